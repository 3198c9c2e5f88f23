// Stores the users of a XEP-0227 file: what Prosody, ejabberd and xfarm's
// own export write. An account that already exists is left alone unless
// asked to replace it; what xfarm has no place for (privacy lists) is
// counted and reported, never silently dropped.
import type { Element } from "ltx";
import { bareOf, parseJid } from "../lib/jid.js";
import { deriveCredentials, type Credentials, type ScramHash } from "../lib/sasl/scram-credentials.js";
import { NS_DELAY, NS_PIE_SCRAM, NS_PUBSUB, NS_PUBSUB_OWNER } from "./pie-export.js";
import { NS_MODULE_DATA, NS_PIE_MAM, importMamArchive, importModuleData } from "./pie-module-data.js";
import type { PieUser } from "./pie-reader.js";
import { SUBSCRIPTIONS } from "./rows.js";
import type { RosterItem, Store, Subscription } from "./store.js";

export interface ImportOptions {
  /** Delete an existing account first, rather than skip it. */
  replace: boolean;
  /** PBKDF2 iterations for accounts that come with a plain password. */
  iterations: number;
}

export type ImportResult =
  | { jid: string; status: "imported"; skipped: string[] }
  | { jid: string; status: "exists" | "refused"; reason: string };

/** Imports one <user/>; throws only for database errors. */
export async function importUser(store: Store, { host, user }: PieUser, opts: ImportOptions): Promise<ImportResult> {
  const name = user.attrs.name as string | undefined;
  const jid = name ? bareOf(`${name}@${host}`) : null;
  const refused = (reason: string): ImportResult => ({ jid: jid ?? `${name ?? "?"}@${host}`, status: "refused", reason });
  if (!jid || !parseJid(jid)?.local) return refused("not a valid JID");
  const credentials = await credentialsOf(user, opts.iterations);
  if (!credentials) return refused("no password and no SCRAM-SHA-1 or SCRAM-SHA-256 keys");

  if (await store.accountExists(jid)) {
    if (!opts.replace) return { jid, status: "exists", reason: "account exists (use --replace to overwrite it)" };
    await store.deleteAccount(jid);
  }
  await store.createAccount(jid, credentials);

  const skipped: string[] = [];
  for (const child of user.getChildElements()) {
    const ns = child.attrs.xmlns as string | undefined;
    const kind = `${child.name}${ns ? ` (${ns})` : ""}`;
    if (child.name === "scram-credentials" && ns === NS_PIE_SCRAM) continue;
    else if (child.name === "query" && ns === "jabber:iq:roster") await importRoster(store, jid, child);
    else if (child.name === "presence" && (ns === "jabber:client" || ns === undefined)) await importPending(store, jid, child);
    else if (child.name === "offline-messages" && ns === undefined) await importOffline(store, jid, host, child);
    else if (child.name === "query" && ns === "jabber:iq:private") await importPrivate(store, jid, child);
    else if (child.name === "vCard" && ns === "vcard-temp") await store.setVcard(jid, child.toString());
    else if (child.name === "pubsub" && ns === NS_PUBSUB_OWNER) await importPepConfig(store, jid, child);
    else if (child.name === "pubsub" && ns === NS_PUBSUB) await importPepItems(store, jid, child);
    else if (child.name === "archive" && ns === NS_PIE_MAM) skipped.push(...(await importMamArchive(store, jid, child)));
    else if (child.name === "module-data" && ns === NS_MODULE_DATA) skipped.push(...(await importModuleData(store, jid, child)));
    else skipped.push(kind);
  }
  return { jid, status: "imported", skipped };
}

/** The SCRAM mechanisms xfarm keeps keys for (a Map: a file's `constructor` must not find anything). */
const SCRAM_HASHES = new Map<string, ScramHash>([
  ["SCRAM-SHA-1", "SHA-1"],
  ["SCRAM-SHA-256", "SHA-256"],
]);

/** SCRAM keys for the hashes xfarm knows, else keys derived from a plain password. */
async function credentialsOf(user: Element, iterations: number): Promise<Credentials | null> {
  const creds: Credentials = {};
  for (const el of user.getChildren("scram-credentials", NS_PIE_SCRAM)) {
    const hash = SCRAM_HASHES.get(el.attrs.mechanism as string);
    const iter = Number(el.getChildText("iter-count"));
    const [salt, serverKey, storedKey] = ["salt", "server-key", "stored-key"].map((n) => Buffer.from(el.getChildText(n) ?? "", "base64"));
    if (!hash || !Number.isSafeInteger(iter) || iter < 1 || !salt!.length || !serverKey!.length || !storedKey!.length) continue;
    creds[hash] = { iterations: iter, salt: salt!, serverKey: serverKey!, storedKey: storedKey! };
  }
  if (creds["SHA-1"] || creds["SHA-256"]) return creds;
  const password = user.attrs.password as string | undefined;
  if (!password) return null;
  try {
    return await deriveCredentials(password, iterations);
  } catch {
    return null; // empty, or fails SASLprep: no client could log in with it
  }
}

async function importRoster(store: Store, jid: string, query: Element): Promise<void> {
  for (const el of query.getChildren("item")) {
    const contact = bareOf((el.attrs.jid as string | undefined) ?? "");
    const sub = (el.attrs.subscription as string | undefined) ?? "none";
    if (!contact || contact === jid || !SUBSCRIPTIONS.has(sub)) continue;
    const old = await store.getRosterItem(jid, contact);
    const item: RosterItem = {
      contact,
      name: (el.attrs.name as string | undefined) ?? null,
      subscription: sub as Subscription,
      askOut: el.attrs.ask === "subscribe",
      pendingIn: old?.pendingIn ?? false,
      visible: true,
      groups: [...new Set(el.getChildren("group").map((g) => g.getText()).filter((g) => g !== ""))],
    };
    await store.putRosterItem(jid, item);
  }
}

/** XEP-0227 §4.8: a subscription request waiting for the user. */
async function importPending(store: Store, jid: string, presence: Element): Promise<void> {
  const contact = bareOf((presence.attrs.from as string | undefined) ?? "");
  if (presence.attrs.type !== "subscribe" || !contact || contact === jid) return;
  const old = await store.getRosterItem(jid, contact);
  const base: RosterItem = old ?? { contact, name: null, subscription: "none", askOut: false, pendingIn: false, visible: false, groups: [] };
  await store.putRosterItem(jid, { ...base, pendingIn: true });
}

/** The delay the old server added when it stored the message gives the time; mod-offline adds its own at delivery. */
async function importOffline(store: Store, jid: string, host: string, box: Element): Promise<void> {
  for (const message of box.getChildren("message")) {
    let stored = new Date();
    const delay = message.getChildren("delay", NS_DELAY).find((d) => d.attrs.from === host || d.attrs.from === undefined);
    if (delay) {
      const at = new Date(delay.attrs.stamp as string);
      if (!Number.isNaN(at.getTime())) stored = at;
      message.remove(delay);
    }
    message.attrs = { xmlns: "jabber:client", ...message.attrs };
    await store.storeOffline(jid, message.toString(), stored);
  }
}

async function importPrivate(store: Store, jid: string, query: Element): Promise<void> {
  for (const el of query.getChildElements()) {
    const namespace = el.attrs.xmlns as string | undefined;
    if (!namespace) continue;
    await store.setPrivate(jid, { namespace, name: el.name }, el.toString());
  }
}

async function importPepConfig(store: Store, jid: string, owner: Element): Promise<void> {
  for (const el of owner.getChildren("configure")) {
    const node = el.attrs.node as string | undefined;
    if (!node) continue;
    const config: Record<string, string> = {};
    for (const field of el.getChild("x", "jabber:x:data")?.getChildren("field") ?? []) {
      const name = field.attrs.var as string | undefined;
      const values = field.getChildren("value").map((v) => v.getText());
      // Prosody writes every field, unset ones empty: those keep mod-pep's defaults.
      if (!name || name === "FORM_TYPE" || values.length === 0) continue;
      config[name] = values.join("\n");
    }
    await store.putPepNode(jid, { node, config });
  }
}

async function importPepItems(store: Store, jid: string, pubsub: Element): Promise<void> {
  for (const list of pubsub.getChildren("items")) {
    const node = list.attrs.node as string | undefined;
    if (!node) continue;
    const existing = await store.getPepNode(jid, node);
    if (!existing) await store.putPepNode(jid, { node, config: {} });
    const items = list.getChildren("item");
    // Every item the file holds is kept, even beyond the node's max_items.
    const max = Math.max(1, items.length);
    for (const item of items) {
      const payload = item.getChildElements()[0];
      if (!payload || !item.attrs.id) continue;
      await store.publishPepItem(jid, node, { id: item.attrs.id as string, xml: payload.toString(), published: new Date() }, max);
    }
  }
}

