// XEP-0313 message archive management: each user's messages in and out are
// kept in the user's archive "mam" (api.storage, the shape XEP-0227's MAM
// element exports), with the other party's bare JID as `with`; the user's
// clients page through it. Inbound messages are archived on the recipient's
// sm before delivery, whether delivered or stored offline, and carry the
// archive id as their XEP-0359 stanza-id; outbound ones on the sender's sm
// before routing. A message between two resources of one account is
// archived once, on its way in.
import { createHash } from "node:crypto";
import type { Element } from "ltx";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import type { StanzaEvent } from "./hooks.js";
import { archives, MAX_PREFS_BYTES, NS_MAM, parsePrefs, prefsElement, readPrefs, type ArchiveDefault } from "./mam-prefs.js";
import { fin, isRefusal, parseQuery, queryForm, resultMessage } from "./mam-query.js";
import { changeMessage, messageType } from "./mod-message.js";
import { defineModule, type ModuleApi, type OptionSpecs, type OptionsOf } from "./module-api.js";
import type { Work } from "./origin.js";
import { FrameTooLargeError, iqResult, standalone } from "./stanza.js";

/**
 * Its options (`[sm.modules.mam]`). Defaults: Prosody's for the default
 * policy, page sizes and retention (default_archive_policy,
 * max_archive_query_results, archive_expires_after).
 */
export const MAM_OPTIONS = {
  default_policy: { type: "string", default: "always", doc: 'What an account that set no preferences gets archived: "always" (as Prosody and ejabberd), "never", or "roster" (contacts in its roster).' },
  default_page: { type: "integer", default: 20, doc: "Results a page holds when the client asks no `<max/>` (Prosody's)." },
  max_page: { type: "integer", default: 50, doc: "Most results one page holds (Prosody's max_archive_query_results); a larger `<max/>` is clamped to it, not refused." },
  retention_days: { type: "integer", default: 7, doc: "Days a message is kept (Prosody's archive_expires_after; ejabberd keeps them for ever); 0 keeps them for ever." },
  expire_interval: { type: "integer", default: 3600, doc: "Seconds between two runs of each sm's expiry of messages older than retention_days." },
  max_per_user: { type: "integer", default: 10000, doc: "Messages one account's archive keeps; the oldest beyond go." },
  trim_every: {
    type: "integer",
    default: 100,
    doc: "Messages an sm archives for an account between two trims to max_per_user: an archive may pass the cap by fewer than this many per sm.",
  },
} satisfies OptionSpecs;

export type MamOptions = OptionsOf<typeof MAM_OPTIONS>;

const POLICIES: readonly string[] = ["always", "never", "roster"] satisfies ArchiveDefault[];

export const modMam = defineModule({
  name: "mam",
  doc: "XEP-0313 message archive management, with XEP-0359 stanza-ids on the messages archived.",
  enabled: true,
  options: MAM_OPTIONS,
  setup,
});

/** Values their type lets through that the module cannot work with: the sm stops at start-up naming the key, as for a wrong type. */
function checked(options: MamOptions): MamOptions {
  const refuse = (key: keyof MamOptions, expected: string): never => {
    throw new Error(`config sm.modules.mam.${key}: expected ${expected}, got ${JSON.stringify(options[key])}`);
  };
  if (!POLICIES.includes(options.default_policy)) refuse("default_policy", POLICIES.map((p) => `"${p}"`).join(", "));
  if (options.max_page < 1) refuse("max_page", "at least 1");
  if (options.default_page < 1 || options.default_page > options.max_page) refuse("default_page", `1 to max_page (${options.max_page})`);
  for (const key of ["retention_days", "max_per_user"] as const) if (options[key] < 0) refuse(key, "0 or more");
  for (const key of ["expire_interval", "trim_every"] as const) if (options[key] < 1) refuse(key, "at least 1");
  return options;
}

const NS_SID = "urn:xmpp:sid:0";
const NS_HINTS = "urn:xmpp:hints";
const NS_CARBONS = "urn:xmpp:carbons:2";
/** Not kept: typing notifications say nothing once read later (Prosody's dont_archive_namespaces). */
const NS_CHATSTATES = "http://jabber.org/protocol/chatstates";

/** Before mod-carbons (10), so its received copies carry the stanza-id too. */
const BEFORE_CARBONS = 20;

function setup(api: ModuleApi, given: MamOptions): void {
  const options = checked(given);
  const archive = api.storage.archive("mam");
  const prefsStore = api.storage.kv("mam");
  /** Appends per user since the last trim, on this sm. */
  const sinceTrim = new Map<string, number>();

  api.addFeature(NS_MAM, "account");
  api.addFeature(NS_SID, "account");
  // On the server's too, as ejabberd does: clients such as Profanity 0.13 look for it only there.
  api.addFeature(NS_MAM);

  async function shallArchive(user: string, other: string): Promise<boolean> {
    const prefs = readPrefs(await prefsStore.get(user, "prefs"), options.default_policy as ArchiveDefault);
    return archives(prefs, other, async () => (await api.store.getRosterItem(user, other)) !== null);
  }

  async function append(work: Work, user: string, other: string, stanza: Element): Promise<string> {
    const item = { stamp: new Date(), with: other, xml: stored(stanza, user).toString() };
    // Named from what set it going (protocol §2.5): the stanza processed again after a failover finds itself archived, under the same id.
    const origin = api.deliveryId(work, `mam:${user}`);
    const [id] = await archive.append(user, origin === undefined ? item : { ...item, id: archiveId(origin) });
    const n = (sinceTrim.get(user) ?? 0) + 1;
    if (n < options.trim_every) sinceTrim.set(user, n);
    else {
      sinceTrim.delete(user);
      await archive.trim(user, options.max_per_user);
    }
    return id!;
  }

  /**
   * Archives a message for `user` if the user exists and wants it: its
   * archive id, else null. Archiving never holds a message back: in a
   * database outage (or on any failure) the message goes on unarchived,
   * as chat goes on without a database (Prosody alike).
   */
  async function archived(work: Work, user: string, other: string, stanza: Element, exists: () => Promise<boolean>): Promise<string | null> {
    try {
      if (!(await exists()) || !(await shallArchive(user, other))) return null;
      return await append(work, user, other, stanza);
    } catch (err) {
      // An outage is logged once, by the store's availability callback, not per message.
      if (!(err instanceof StoreUnavailableError)) api.log.error({ err, user }, "message not archived");
      return null;
    }
  }

  // Inbound: in the recipient's archive, then the stanza-id for its clients (XEP-0359).
  const inbound = async (event: StanzaEvent): Promise<void> => {
    const user = event.to.bare;
    // Any stanza-id claiming to be this archive's is forged (XEP-0359 §4), archived or not.
    const forged = (c: Element): boolean => c.name === "stanza-id" && c.attrs.xmlns === NS_SID && c.attrs.by === user;
    if (event.stanza.children.some((c) => typeof c !== "string" && forged(c))) {
      changeMessage(event, (s) => void (s.children = s.children.filter((c) => typeof c === "string" || !forged(c))));
    }
    if (!archivable(event.stanza)) return;
    const id = await archived(event.work, user, event.from.bare, event.stanza, async () => api.sessions.of(user).length > 0 || (await api.userExists(user)));
    if (id !== null) changeMessage(event, (s) => void s.c("stanza-id", { xmlns: NS_SID, by: user, id }));
  };
  api.hook("message/bare", inbound, BEFORE_CARBONS);
  api.hook("message/full", inbound, BEFORE_CARBONS);

  // Outbound: in the sender's archive. One to the account itself is archived as inbound.
  for (const target of ["bare", "full"] as const) {
    api.hook(`pre-message/${target}`, async (event) => {
      const user = event.from.bare;
      if (!event.origin || event.to.bare === user || !archivable(event.stanza)) return;
      await archived(event.work, user, event.to.bare, event.stanza, async () => true);
    });
  }

  api.hook(`iq-get/self/${NS_MAM}:prefs`, async (event) => {
    const prefs = readPrefs(await prefsStore.get(event.from.bare, "prefs"), options.default_policy as ArchiveDefault);
    return answered(api.reply(event, iqResult(event.stanza, prefsElement(prefs))));
  });
  api.hook(`iq-set/self/${NS_MAM}:prefs`, async (event) => {
    const prefs = parsePrefs(event.stanza.getChild("prefs")!);
    if (typeof prefs === "string") return answered(api.error(event, "bad-request", prefs));
    const json = JSON.stringify(prefs);
    if (Buffer.byteLength(json) > MAX_PREFS_BYTES) return answered(api.error(event, "policy-violation", `preferences over ${MAX_PREFS_BYTES} bytes`));
    await prefsStore.put(event.from.bare, "prefs", json);
    return answered(api.reply(event, iqResult(event.stanza, prefsElement(prefs))));
  });

  api.hook(`iq-get/self/${NS_MAM}:query`, (event) => answered(api.reply(event, iqResult(event.stanza, queryForm()))));
  api.hook(`iq-set/self/${NS_MAM}:query`, (event) => answered(query(api, options, archive, event)));

  if (options.retention_days > 0) {
    const expire = (): void => {
      archive.expire(new Date(Date.now() - options.retention_days * 86_400_000)).then(
        (gone) => gone > 0 && api.log.info({ gone }, "expired archived messages"),
        (err: unknown) => api.log.warn({ err }, "archive expiry failed"),
      );
    };
    // Unref'd: the expiry never keeps the process up.
    setInterval(expire, options.expire_interval * 1000).unref();
  }
}

/** A hook's answer: handled, once the answer is sent. */
async function answered(sending: Promise<void>): Promise<true> {
  await sending;
  return true;
}

/** §4: a page of the querying user's archive, each result to the querying session only, then <fin/>. */
async function query(api: ModuleApi, options: MamOptions, archive: ReturnType<ModuleApi["storage"]["archive"]>, event: StanzaEvent): Promise<void> {
  const user = event.from.bare;
  const request = parseQuery(event.stanza.getChild("query")!, options.default_page, options.max_page);
  if (isRefusal(request)) return api.error(event, request.condition, request.text);
  const count = await archive.count(user, request.query);
  if (request.countOnly) return api.reply(event, iqResult(event.stanza, fin(count === 0, undefined, undefined, count)));
  const page = await archive.query(user, request.query);
  // §4.1.5 (XEP-0059 §2.5): an after or before naming no archived message.
  if (!page) return api.error(event, "item-not-found");
  const items = request.newestFirst ? [...page.items].reverse() : page.items;
  for (const item of items) {
    const result = resultMessage(item, user, event.from.full, request.queryId);
    if (!result) continue;
    if (event.origin) {
      try {
        api.deliver(event.work, event.origin, result);
      } catch (err) {
        // One that grew too large wrapped is left out: the rest of the page still goes.
        if (!(err instanceof FrameTooLargeError)) throw err;
        api.log.warn({ user, id: item.id }, "archived message too large to send as a result");
      }
    }
  }
  await api.reply(event, iqResult(event.stanza, fin(page.complete, page.items[0]?.id, page.items.at(-1)?.id, count)));
}

/**
 * XEP-0313 §7 with XEP-0334 hints, as Prosody decides: chat and normal
 * messages, with a body or another payload worth keeping; never errors,
 * groupchat (a MUC archives those), headlines or carbon copies.
 */
export function archivable(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type !== "chat" && type !== "normal") return false;
  if (stanza.getChild("received", NS_CARBONS) || stanza.getChild("sent", NS_CARBONS)) return false;
  if (stanza.getChild("no-store", NS_HINTS) || stanza.getChild("no-permanent-store", NS_HINTS)) return false;
  if (stanza.getChild("store", NS_HINTS)) return true;
  return stanza.getChildElements().some((c) => c.name === "body" || c.name === "subject" || KEPT.has(c.getNS() ?? ""));
}

/** Payloads archived without a body (Prosody's list): encryption, receipts, chat markers, invitations, Jingle messages. */
const KEPT = new Set([
  "urn:xmpp:eme:0",
  "urn:xmpp:receipts",
  "urn:xmpp:chat-markers:0",
  "jabber:x:conference",
  "urn:xmpp:jingle-message:0",
  "urn:xmpp:jingle-message:1",
]);

/** 96 bits of the identity's SHA-256: as unpredictable from outside the farm as a random id, and the same each time it is processed. */
function archiveId(origin: string): string {
  return createHash("sha256").update(origin).digest().subarray(0, 12).toString("base64url");
}

/** What the archive keeps: the message in its namespace, without chat states or the stanza-ids this archive gives. */
function stored(stanza: Element, user: string): Element {
  const copy = standalone(stanza);
  copy.attrs.xmlns = "jabber:client";
  copy.children = copy.children.filter(
    (c) => typeof c === "string" || !(c.getNS() === NS_CHATSTATES || (c.name === "stanza-id" && c.attrs.xmlns === NS_SID && c.attrs.by === user)),
  );
  return copy;
}
