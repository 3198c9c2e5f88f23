// XEP-0313 §4 queries: the data form (with, start, end, before-id,
// after-id) and XEP-0059 paging of an iq set, into an archive query; the
// form a client discovers (§5.2); and the result a message is sent in.
import { Element, parse } from "ltx";
import { bareOf } from "../lib/jid.js";
import type { ArchiveItem, ArchiveQuery } from "../xdb-sql/store.js";
import { NS_MAM } from "./mam-prefs.js";
import { pageRequest, NS_RSM } from "./pep-paging.js";

const NS_DATA = "jabber:x:data";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_DELAY = "urn:xmpp:delay";

/** XEP-0082 dateTime, as §4.1.1 asks for start and end. */
const DATETIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

export interface MamRequest {
  query: ArchiveQuery;
  /** XEP-0059 max 0: only the count is asked for. */
  countOnly: boolean;
  /** <flip-page/>: the page's results go newest first (§4.1.4); else oldest first, however it was paged. */
  newestFirst: boolean;
  queryId: string | undefined;
}

/** How a query is answered: an error condition and its text. */
export interface MamRefusal {
  condition: "bad-request" | "feature-not-implemented";
  text: string;
}

/** The fields a query's form may carry: those §5.2's discovery lists. */
const FIELDS = ["with", "start", "end", "before-id", "after-id"];

/**
 * A query's request; the page size `max` (default `defaultMax`) is clamped
 * to `maxPage`, as Prosody does, rather than refused.
 */
export function parseQuery(query: Element, defaultMax: number, maxPage: number): MamRequest | MamRefusal {
  const bad = (text: string): MamRefusal => ({ condition: "bad-request", text });
  const fields = new Map<string, string>();
  const form = query.getChild("x", NS_DATA);
  if (form) {
    for (const f of form.getChildren("field")) {
      const name = f.attrs.var as string | undefined;
      const value = f.getChildText("value")?.trim() ?? "";
      if (name === "FORM_TYPE") {
        if (value !== NS_MAM) return bad(`FORM_TYPE must be ${NS_MAM}`);
      } else if (name && FIELDS.includes(name)) {
        // An empty field is no filter, as clients that send every field mean it.
        if (value !== "") fields.set(name, value);
      }
      // §4.1.1: a field the server does not know is an error.
      else return bad(`unsupported field ${name ?? "without a var"}`);
    }
  }
  const q: ArchiveQuery = { limit: defaultMax };
  const withJid = fields.get("with");
  if (withJid !== undefined) {
    const bare = bareOf(withJid);
    if (!bare) return bad("with is not a JID");
    q.with = bare;
  }
  for (const name of ["start", "end"] as const) {
    const text = fields.get(name);
    if (text === undefined) continue;
    if (!DATETIME.test(text) || Number.isNaN(Date.parse(text))) return bad(`${name} is not an XEP-0082 dateTime`);
    q[name] = new Date(text);
  }
  const afterId = fields.get("after-id");
  const beforeId = fields.get("before-id");
  if (afterId !== undefined) q.after = afterId;
  if (beforeId !== undefined) {
    q.before = beforeId;
    q.forward = true;
  }

  let countOnly = false;
  const set = query.getChild("set", NS_RSM);
  if (set) {
    const page = pageRequest(set);
    if (!page) return bad("malformed result set request");
    if (page.index !== undefined) return { condition: "feature-not-implemented", text: "paging by index is not supported" };
    if (page.max !== undefined) {
      countOnly = page.max === 0;
      q.limit = Math.max(1, Math.min(page.max, maxPage));
    }
    // XEP-0059's own after and before take the place of the form's ids, as in Prosody.
    if (page.after !== undefined) q.after = page.after;
    if (page.before !== undefined) {
      q.before = page.before === "" ? true : page.before;
      delete q.forward;
    }
  }
  q.limit = Math.min(q.limit, maxPage);
  const newestFirst = query.getChild("flip-page") !== undefined;
  return { query: q, countOnly, newestFirst, queryId: query.attrs.queryid as string | undefined };
}

export function isRefusal(r: MamRequest | MamRefusal): r is MamRefusal {
  return "condition" in r;
}

/** §5.2: the fields a query's form may carry. */
export function queryForm(): Element {
  const query = new Element("query", { xmlns: NS_MAM });
  const x = query.c("x", { xmlns: NS_DATA, type: "form" });
  x.c("field", { var: "FORM_TYPE", type: "hidden" }).c("value").t(NS_MAM);
  x.c("field", { var: "with", type: "jid-single" });
  x.c("field", { var: "start", type: "text-single" });
  x.c("field", { var: "end", type: "text-single" });
  x.c("field", { var: "before-id", type: "text-single" });
  x.c("field", { var: "after-id", type: "text-single" });
  return query;
}

/** §4.2: one archived message, as its result; null when its XML no longer parses. */
export function resultMessage(item: ArchiveItem, from: string, to: string, queryId: string | undefined): Element | null {
  let message: Element;
  try {
    message = parse(item.xml);
  } catch {
    return null;
  }
  message.attrs = { xmlns: "jabber:client", ...message.attrs };
  const wrapper = new Element("message", { from, to });
  const forwarded = wrapper.c("result", { xmlns: NS_MAM, id: item.id, ...(queryId !== undefined && { queryid: queryId }) }).c("forwarded", { xmlns: NS_FORWARD });
  forwarded.c("delay", { xmlns: NS_DELAY, stamp: item.stamp.toISOString() });
  forwarded.cnode(message);
  return wrapper;
}

/** §4.3: the iq result's <fin/>, with XEP-0059's first, last and count. */
export function fin(complete: boolean, first: string | undefined, last: string | undefined, count: number): Element {
  const el = new Element("fin", { xmlns: NS_MAM, ...(complete && { complete: "true" }) });
  const set = el.c("set", { xmlns: NS_RSM });
  if (first !== undefined) set.c("first").t(first);
  if (last !== undefined) set.c("last").t(last);
  set.c("count").t(String(count));
  return el;
}
