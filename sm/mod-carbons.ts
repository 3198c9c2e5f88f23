// XEP-0280 message carbons: each of a user's clients that enables carbons
// gets a copy of the instant messages the user's other resources receive
// (<received/>) and send (<sent/>), so every device shows both sides of every
// conversation. Received copies are made on the recipient's sm, sent copies
// on the sender's; both only add deliveries and never change routing.
import { Element, clone } from "ltx";
import type { StanzaEvent } from "./hooks.js";
import { chatTargets, messageType } from "./mod-message.js";
import { defineModule, type ModuleApi, type SessionStateSlot } from "./module-api.js";
import type { Session } from "./sessions.js";
import { FrameTooLargeError, iqResult } from "./stanza.js";

const NS = "urn:xmpp:carbons:2";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_HINTS = "urn:xmpp:hints";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

/** Runs before mod-message delivers, so that the copies are decided on the same sessions it delivers to. */
const BEFORE_DELIVERY = 10;

/**
 * Whether a session enabled carbons (true, or nothing): in the session's
 * module state, so that carbons stay on when the session is rebuilt on
 * another sm or resumed on another front end.
 */
type Enabled = SessionStateSlot<true>;

export const modCarbons = defineModule({
  name: "carbons",
  doc: "XEP-0280 message carbons: each client of a user that enables them gets copies of the messages the user's other clients send and receive.",
  enabled: true,
  options: {},
  setup,
});

function setup(api: ModuleApi): void {
  const enabled: Enabled = api.sessionState<true>();
  api.addFeature(NS);
  // §4, §5: sent to the client's own account (no 'to'); enabling twice is no error (§10.1).
  api.hook(`iq-set/self/${NS}:enable`, (event) => toggle(api, enabled, event, true));
  api.hook(`iq-set/self/${NS}:disable`, (event) => toggle(api, enabled, event, false));

  // §7: copies go to the enabled resources the message does not reach by RFC 6121 §8.5.
  api.hook("message/bare", (event) => copyReceived(api, enabled, event, chatTargets(api, event.to.bare)), BEFORE_DELIVERY);
  api.hook(
    "message/full",
    (event) => {
      const session = api.sessions.get(event.to);
      // A gone resource: mod-message delivers to the bare JID's resources instead.
      copyReceived(api, enabled, event, session ? [session] : chatTargets(api, event.to.bare));
    },
    BEFORE_DELIVERY,
  );

  // §8: what a local session sends, to its other resources. A message to the
  // account's own JIDs is copied once, as received, on its way in.
  for (const target of ["bare", "full"] as const) {
    api.hook(`pre-message/${target}`, (event) => {
      if (event.origin && event.to.bare !== event.from.bare && eligible(event.stanza)) {
        copy(api, enabled, "sent", event, event.origin.user, [event.origin]);
      }
    });
  }
}

async function toggle(api: ModuleApi, enabled: Enabled, event: StanzaEvent, on: boolean): Promise<true> {
  // A self stanza always comes from a local session.
  if (event.origin) {
    if ((enabled.get(event.origin) === true) !== on) enabled.set(event.origin, on || undefined);
    await api.reply(event, iqResult(event.stanza));
  } else {
    await api.error(event, "not-allowed");
  }
  return true;
}

function copyReceived(api: ModuleApi, enabled: Enabled, event: StanzaEvent, targets: Session[]): void {
  // §6: nor is anything a MUC room sends, private messages included.
  if (!eligible(event.stanza) || event.stanza.getChild("x", NS_MUC_USER)) return;
  // The sending resource, when the message is the user's own, saw it already.
  const sender = api.sessions.get(event.from);
  copy(api, enabled, "received", event, event.to.bare, sender ? [...targets, sender] : targets);
}

/**
 * §6: chat messages, and normal ones with a body; none marked private (§9)
 * or XEP-0334 no-copy.
 */
function eligible(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type !== "chat" && !(type === "normal" && stanza.getChild("body"))) return false;
  return !stanza.getChild("private", NS) && !stanza.getChild("no-copy", NS_HINTS);
}

/** Delivers a copy of the event's stanza to each of `user`'s carbons-enabled sessions but those in `except`. */
function copy(api: ModuleApi, enabled: Enabled, kind: "received" | "sent", { stanza, work }: StanzaEvent, user: string, except: Session[]): void {
  const sessions = api.sessions.of(user).filter((s) => enabled.get(s) === true && !except.includes(s));
  if (sessions.length === 0) return;
  const inner = clone(stanza);
  // XEP-0297: the forwarded stanza keeps its own namespace inside <forwarded/>.
  inner.attrs.xmlns = "jabber:client";
  for (const session of sessions) {
    const wrapper = new Element("message", { from: user, to: session.jid.full, type: stanza.attrs.type });
    wrapper.c(kind, { xmlns: NS }).c("forwarded", { xmlns: NS_FORWARD }).cnode(inner);
    try {
      api.deliver(work, session, wrapper);
    } catch (err) {
      // A copy too large for a link frame is left out; the message itself still goes.
      if (!(err instanceof FrameTooLargeError)) throw err;
      session.log.debug({ bytes: err.bytes }, "carbon copy too large for a link frame; not sent");
    }
  }
}
