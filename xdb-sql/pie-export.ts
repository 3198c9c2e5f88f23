// Writes accounts as XEP-0227 (portable import/export): SCRAM keys (never
// a password), roster with pending requests, offline messages, vCard,
// private XML, PEP nodes with their items, and what modules store
// (pie-module-data.ts). One user at a time, so the file can be as large as
// the database.
import { once } from "node:events";
import fs from "node:fs";
import path from "node:path";
import type { Writable } from "node:stream";
import { Element, escapeXML, parse } from "ltx";
import { moduleDataElements } from "./pie-module-data.js";
import { NS_PIE } from "./pie-reader.js";
import type { Store } from "./store.js";
import type { ScramHash } from "../lib/sasl/scram-credentials.js";

export const NS_PIE_SCRAM = "urn:xmpp:pie:0#scram";
export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner";
export const NODE_CONFIG_FORM = "http://jabber.org/protocol/pubsub#node_config";
export const NS_DELAY = "urn:xmpp:delay";

export interface ExportOptions {
  /** Only these domains; all when empty. */
  domains: string[];
  /** Called after each user, for progress. */
  progress?: (done: number, total: number) => void;
}

/** The accounts to export, by host, hosts and users in order. */
async function accountsByHost(store: Store, domains: string[]): Promise<Map<string, string[]>> {
  const users = domains.length > 0 ? (await Promise.all(domains.map((d) => store.listAccounts(d)))).flat() : await store.listAccounts();
  const byHost = new Map<string, string[]>();
  for (const jid of users) {
    const host = jid.slice(jid.lastIndexOf("@") + 1);
    byHost.set(host, [...(byHost.get(host) ?? []), jid]);
  }
  return new Map([...byHost].sort(([a], [b]) => (a < b ? -1 : 1)));
}

const HEADER = `<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='${NS_PIE}'>\n`;

/** Writes the whole document to `out`; returns how many users it holds. */
export async function exportPie(store: Store, out: Writable, opts: ExportOptions): Promise<number> {
  const byHost = await accountsByHost(store, opts.domains);
  const total = [...byHost.values()].reduce((n, jids) => n + jids.length, 0);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, "drain");
  };
  await write(HEADER);
  let done = 0;
  for (const [host, jids] of byHost) {
    await write(`  <host jid='${escapeXML(host)}'>\n`);
    for (const jid of jids) {
      await write(`    ${(await userElement(store, jid)).toString()}\n`);
      opts.progress?.(++done, total);
    }
    await write(`  </host>\n`);
  }
  await write(`</server-data>\n`);
  return total;
}

/**
 * Writes one complete document per account, `<dir>/<user@host>.xml`: the
 * layout Prosody's XEP-0227 storage reads (prosody-migrator). Returns how
 * many files it wrote.
 */
export async function exportPieFiles(store: Store, dir: string, opts: ExportOptions): Promise<number> {
  const byHost = await accountsByHost(store, opts.domains);
  const total = [...byHost.values()].reduce((n, jids) => n + jids.length, 0);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  let done = 0;
  for (const [host, jids] of byHost) {
    for (const jid of jids) {
      const doc = `${HEADER}  <host jid='${escapeXML(host)}'>\n    ${(await userElement(store, jid)).toString()}\n  </host>\n</server-data>\n`;
      // 0600: the file holds SCRAM keys, as the database does.
      await fs.promises.writeFile(path.join(dir, `${jid}.xml`), doc, { mode: 0o600 });
      opts.progress?.(++done, total);
    }
  }
  return total;
}

/** One account as a <user/> element. */
export async function userElement(store: Store, jid: string): Promise<Element> {
  const at = jid.lastIndexOf("@");
  const host = jid.slice(at + 1);
  const user = new Element("user", { name: jid.slice(0, at) });

  const creds = await store.getCredentials(jid);
  for (const hash of ["SHA-1", "SHA-256"] as const satisfies readonly ScramHash[]) {
    const keys = creds?.[hash];
    if (!keys) continue;
    const el = user.c("scram-credentials", { xmlns: NS_PIE_SCRAM, mechanism: `SCRAM-${hash}` });
    el.c("iter-count").t(String(keys.iterations));
    el.c("salt").t(keys.salt.toString("base64"));
    el.c("server-key").t(keys.serverKey.toString("base64"));
    el.c("stored-key").t(keys.storedKey.toString("base64"));
  }

  const roster = await store.getRoster(jid);
  const visible = roster.filter((i) => i.visible);
  if (visible.length > 0) {
    const query = user.c("query", { xmlns: "jabber:iq:roster" });
    for (const i of visible) {
      const attrs: Record<string, string> = { jid: i.contact, subscription: i.subscription };
      if (i.name !== null) attrs.name = i.name;
      if (i.askOut) attrs.ask = "subscribe";
      const item = query.c("item", attrs);
      for (const g of i.groups) item.c("group").t(g);
    }
  }
  // XEP-0227 §4.8: requests the user has not answered yet.
  for (const i of roster) {
    if (i.pendingIn) user.c("presence", { xmlns: "jabber:client", type: "subscribe", from: i.contact, to: jid });
  }

  const offline = await store.loadOffline(jid);
  if (offline.length > 0) {
    const box = user.c("offline-messages");
    for (const m of offline) {
      let message: Element;
      try {
        message = parse(m.xml);
      } catch {
        continue; // mod-offline discards such a message too
      }
      message.attrs = { xmlns: "jabber:client", ...message.attrs }; // first, so a round trip writes the same bytes
      message.c("delay", { xmlns: NS_DELAY, from: host, stamp: m.stored.toISOString() });
      box.cnode(message);
    }
  }

  const privates = await store.listPrivate(jid);
  if (privates.length > 0) {
    const query = user.c("query", { xmlns: "jabber:iq:private" });
    for (const p of privates) query.cnode(parse(p.xml));
  }

  const vcard = await store.getVcard(jid);
  if (vcard !== null) user.cnode(parse(vcard));

  const nodes = await store.listPepNodes(jid);
  if (nodes.length > 0) {
    const owner = user.c("pubsub", { xmlns: NS_PUBSUB_OWNER });
    const items = new Element("pubsub", { xmlns: NS_PUBSUB });
    for (const n of nodes) {
      owner.c("configure", { node: n.node }).cnode(configForm(n.config));
      const list = await store.getPepItems(jid, n.node);
      if (list.length === 0) continue;
      const el = items.c("items", { node: n.node });
      for (const i of list) el.c("item", { id: i.id }).cnode(parse(i.xml));
    }
    if (items.children.length > 0) user.cnode(items);
  }
  for (const el of await moduleDataElements(store, jid)) user.cnode(el);
  return user;
}

/** A node configuration as a submitted data form; a multi-valued field's values are kept newline-separated. */
export function configForm(config: Record<string, string>): Element {
  const x = new Element("x", { xmlns: "jabber:x:data", type: "submit" });
  x.c("field", { var: "FORM_TYPE", type: "hidden" }).c("value").t(NODE_CONFIG_FORM);
  for (const [name, value] of Object.entries(config)) {
    const field = x.c("field", { var: name });
    for (const v of value.split("\n")) field.c("value").t(v);
  }
  return x;
}
