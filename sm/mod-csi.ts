// XEP-0352 client state indication: while a client says it is inactive, what
// it need not see at once (presence updates, chat states, PEP notifications)
// is held back, and written in one go, in order, when the client says it is
// active again or something it must see at once comes. The urgency rules are
// Prosody's mod_csi_simple's. The inactive flag is session state, so it
// survives a move to another sm; what is held is not (it goes with the sm).
import { Element, clone } from "ltx";
import { messageType } from "./mod-message.js";
import { defineModule, type FilterHandle, type ModuleApi, type OptionSpecs, type OptionsOf, type Outgoing, type SessionStateSlot } from "./module-api.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";

const NS_CARBONS = "urn:xmpp:carbons:2";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_DELAY = "urn:xmpp:delay";

/** Runs after every other outgoing filter: what they drop or change is never held. */
const LAST = -1000;

/** What a session holds: each stanza with when it was held, and their bytes. */
interface Held {
  stanzas: { out: Outgoing; at: Date; bytes: number }[];
  bytes: number;
}

const OPTIONS = {
  max_held: { type: "integer", default: 100, doc: "Stanzas held for one inactive session; past them, what is held goes at once." },
  max_held_bytes: { type: "integer", default: 65_536, doc: "Bytes held for one inactive session; past them, what is held goes at once." },
  important_payloads: {
    type: "string[]",
    default: [],
    doc: 'Message payloads that make a message urgent, as Prosody\'s csi_important_payloads: "{namespace}name", or "{namespace}" for any element in it.',
  },
} satisfies OptionSpecs;

export const modCsi = defineModule({
  name: "csi",
  doc: "XEP-0352 client state indication: while a client is inactive, presence updates, chat states and PEP notifications wait, and go when it is active again or something urgent comes.",
  enabled: true,
  options: OPTIONS,
  setup,
});

function setup(api: ModuleApi, options: OptionsOf<typeof OPTIONS>): void {
  const inactive: SessionStateSlot<true> = api.sessionState<true>();
  const important = options.important_payloads.map(payload);
  // Weak: a session handed to another sm just goes, with what it held (presence and notices, by design).
  const held = new WeakMap<Session, Held>();

  const flush = (work: Work, session: Session): void => {
    const h = held.get(session);
    if (!h) return;
    held.delete(session);
    for (const { out, at } of h.stanzas) handle.release(work, { ...out, stanza: delayed(out.stanza, session.user, at), raw: undefined });
  };

  const handle: FilterHandle = api.filter((out, work) => {
    const { session, stanza } = out;
    if (inactive.get(session) !== true) return undefined;
    // An offline message is never held; what waited goes first, to keep the order.
    if (out.stored || urgent(stanza, important)) {
      flush(work, session);
      return undefined;
    }
    const bytes = out.raw?.length ?? Buffer.byteLength(stanza.toString());
    let h = held.get(session);
    if (!h) held.set(session, (h = { stanzas: [], bytes: 0 }));
    if (stanza.name === "presence") {
      // Only a contact's latest presence matters: the older one goes, the new one waits at the end.
      const from = stanza.attrs.from;
      const older = h.stanzas.findIndex((s) => s.out.stanza.name === "presence" && s.out.stanza.attrs.from === from);
      if (older >= 0) h.bytes -= h.stanzas.splice(older, 1)[0]!.bytes;
    }
    // Bounded: past either limit, what is held goes now, then this one.
    if (h.stanzas.length + 1 > options.max_held || h.bytes + bytes > options.max_held_bytes) {
      flush(work, session);
      return undefined;
    }
    h.stanzas.push({ out, at: new Date(), bytes });
    h.bytes += bytes;
    return "hold";
  }, LAST);

  api.hook("client-state", ({ session, active, work }) => {
    if (active) {
      if (inactive.get(session) === true) inactive.set(session, undefined);
      flush(work, session);
    } else if (inactive.get(session) !== true) {
      inactive.set(session, true);
    }
    return true;
  });
  // Ended: what it held is presence, chat states and notifications, none of which is routed again or stored.
  api.hook("session-ended", ({ session }) => void held.delete(session));
}

/** Prosody's mod_csi_simple's rules: what an inactive client must still see at once. */
function urgent(stanza: Element, important: readonly Matcher[] = []): boolean {
  const type = stanza.attrs.type;
  if (type === "error") return true;
  if (stanza.name === "presence") return type !== undefined && type !== "unavailable"; // subscriptions
  if (stanza.name !== "message") return true; // an iq waits for its answer
  if (messageType(stanza) === "headline") return false;
  if (stanza.getChild("sent", NS_CARBONS)) return true; // the user's own message, from another client
  const message = stanza.getChild("received", NS_CARBONS)?.getChild("forwarded", NS_FORWARD)?.getChild("message") ?? stanza;
  if (message.getChild("body") || message.getChild("subject")) return true;
  if (message.getChild("encryption", "urn:xmpp:eme:0")) return true;
  if (message.getChild("x", "jabber:x:conference") || message.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("invite")) return true;
  if (message.children.some((c) => c instanceof Element && c.attrs.xmlns === "urn:xmpp:jingle-message:0")) return true;
  return important.some((m) => message.children.some((c) => c instanceof Element && m(c)));
}

type Matcher = (el: Element) => boolean;

/** "{ns}name" or "{ns}", as Prosody writes a payload. */
function payload(spec: string): Matcher {
  const m = /^\{([^}]*)\}(.*)$/.exec(spec);
  if (!m) throw new Error(`csi: important_payloads: "${spec}" is not {namespace}name`);
  const [, ns, name] = m;
  return (el) => el.attrs.xmlns === ns && (name === "" || el.name === name);
}

/** XEP-0203: a held stanza says when it came (an iq is never held). */
function delayed(stanza: Element, from: string, at: Date): Element {
  if (stanza.getChild("delay", NS_DELAY)) return stanza;
  const copy = clone(stanza);
  copy.c("delay", { xmlns: NS_DELAY, from, stamp: at.toISOString() });
  return copy;
}
