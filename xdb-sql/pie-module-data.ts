// XEP-0227 for what modules store (ModuleDataStore), whatever the module:
// the archive named "mam" as XEP-0227 1.1 and Prosody 0.12's
// mod_storage_xep0227 write a MAM archive (<archive xmlns='urn:xmpp:pie:0#mam'>
// of XEP-0313 results), and everything else in an element of xfarm's own,
// <module-data xmlns='urn:xfarm:module-data:0'> (README, "Moving users in and
// out"), which other servers skip.
import { Element, parse } from "ltx";
import { bareOf } from "../lib/jid.js";
import type { NewArchiveItem, Store } from "./store.js";

export const NS_PIE_MAM = "urn:xmpp:pie:0#mam";
export const NS_MAM = "urn:xmpp:mam:2";
export const NS_FORWARD = "urn:xmpp:forward:0";
export const NS_MODULE_DATA = "urn:xfarm:module-data:0";
/** The archive that XEP-0227's MAM element carries: the one mod-mam declares. */
export const MAM_ARCHIVE = "mam";

const NS_DELAY = "urn:xmpp:delay";
/** Items read from the store, and appended to it, at a time. */
const BATCH = 500;

/** The other party of a message in `user`'s archive, as Prosody's import derives it. */
function withOf(user: string, message: Element): string | null {
  const to = bareOf((message.attrs.to as string | undefined) ?? "");
  const from = bareOf((message.attrs.from as string | undefined) ?? "");
  return to === user ? from : to;
}

function parsed(xml: string): Element | null {
  try {
    return parse(xml);
  } catch {
    return null;
  }
}

/** The module data of one account, as children of its <user/>: none when it has none. */
export async function moduleDataElements(store: Store, jid: string): Promise<Element[]> {
  const ours = new Element("module-data", { xmlns: NS_MODULE_DATA });
  let kv: Element | null = null;
  for (const e of await store.listKv(jid)) {
    if (kv?.attrs.store !== e.store) kv = ours.c("kv", { store: e.store });
    kv.c("entry", { key: e.key }).t(e.value);
  }
  let mam: Element | null = null;
  for (const name of await store.listArchives(jid)) {
    let generic: Element | null = null;
    let after: string | undefined;
    for (;;) {
      const page = (await store.queryArchive(jid, name, { limit: BATCH, after }))!;
      for (const i of page.items) {
        const el = parsed(i.xml);
        // A message whose `with` Prosody's import would derive again goes in XEP-0227's element; anything else in ours, so that nothing is lost.
        if (name === MAM_ARCHIVE && el?.name === "message" && withOf(jid, el) === i.with) {
          el.attrs = { xmlns: "jabber:client", ...el.attrs };
          mam ??= new Element("archive", { xmlns: NS_PIE_MAM });
          const forwarded = mam.c("result", { xmlns: NS_MAM, id: i.id }).c("forwarded", { xmlns: NS_FORWARD });
          forwarded.c("delay", { xmlns: NS_DELAY, stamp: i.stamp.toISOString() });
          forwarded.cnode(el);
        } else {
          generic ??= ours.c("archive", { name });
          const item = generic.c("item", { id: i.id, stamp: i.stamp.toISOString(), with: i.with });
          if (el) item.cnode(el);
          else item.t(i.xml);
        }
      }
      if (page.complete || page.items.length === 0) break;
      after = page.items.at(-1)!.id;
    }
  }
  return [...(mam ? [mam] : []), ...(ours.children.length > 0 ? [ours] : [])];
}

/** Appends items a batch at a time: one transaction each, not one per item. */
class Appender {
  private items: NewArchiveItem[] = [];
  constructor(
    private readonly store: Store,
    private readonly jid: string,
    private readonly archive: string,
  ) {}

  async add(item: NewArchiveItem): Promise<void> {
    this.items.push(item);
    if (this.items.length >= BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.items.length > 0) await this.store.appendArchive(this.jid, this.archive, this.items);
    this.items = [];
  }
}

function stampOf(text: string | undefined): Date | null {
  const at = new Date(text ?? "");
  return Number.isNaN(at.getTime()) ? null : at;
}

/** XEP-0227's MAM archive into the "mam" archive; returns what it could not take, for the import's report. */
export async function importMamArchive(store: Store, jid: string, archive: Element): Promise<string[]> {
  const skipped: string[] = [];
  const out = new Appender(store, jid, MAM_ARCHIVE);
  for (const result of archive.getChildren("result", NS_MAM)) {
    const forwarded = result.getChild("forwarded", NS_FORWARD);
    const message = forwarded?.getChild("message");
    const stamp = stampOf(forwarded?.getChild("delay", NS_DELAY)?.attrs.stamp as string | undefined);
    const other = message ? withOf(jid, message) : null;
    if (!message || !stamp || !other) {
      skipped.push(`archive result ${String(result.attrs.id ?? "")} (${NS_PIE_MAM}) without a message, stamp or other party`);
      continue;
    }
    message.attrs = { xmlns: "jabber:client", ...message.attrs };
    const id = result.attrs.id as string | undefined;
    await out.add({ ...(id && { id }), stamp, with: other, xml: message.toString() });
  }
  await out.flush();
  return skipped;
}

/** xfarm's own <module-data/>; returns what it could not take. */
export async function importModuleData(store: Store, jid: string, data: Element): Promise<string[]> {
  const skipped: string[] = [];
  for (const kv of data.getChildren("kv")) {
    const name = kv.attrs.store as string | undefined;
    for (const entry of kv.getChildren("entry")) {
      const key = entry.attrs.key as string | undefined;
      if (!name || key === undefined) skipped.push(`kv entry without a store or key (${NS_MODULE_DATA})`);
      else await store.putKv(jid, name, key, entry.getText());
    }
  }
  for (const archive of data.getChildren("archive")) {
    const name = archive.attrs.name as string | undefined;
    if (!name) {
      skipped.push(`archive without a name (${NS_MODULE_DATA})`);
      continue;
    }
    const out = new Appender(store, jid, name);
    for (const item of archive.getChildren("item")) {
      const stamp = stampOf(item.attrs.stamp as string | undefined);
      const other = item.attrs.with as string | undefined;
      if (!stamp || !other) {
        skipped.push(`archive ${name} item without a stamp or with (${NS_MODULE_DATA})`);
        continue;
      }
      const payload = item.getChildElements()[0];
      const id = item.attrs.id as string | undefined;
      await out.add({ ...(id && { id }), stamp, with: other, xml: payload ? payload.toString() : item.getText() });
    }
    await out.flush();
  }
  return skipped;
}
