// Which of a PEP node's items one answer carries (XEP-0060 §6.5): the
// newest max_items (§6.5.7), a page asked for with result set management
// (XEP-0059), and never more than one stanza the sm may send holds: a
// longer answer is cut, the newest items kept, and a <set/> tells the
// client what it got of how many (§6.5.4), so it can ask for the rest.
// The result set is the node's items oldest first, as ejabberd pages it;
// <before/> empty asks for its last (newest) page.
import { Element } from "ltx";

export const NS_RSM = "http://jabber.org/protocol/rsm";

export interface ItemSize {
  id: string;
  /** The payload's UTF-8 size as stored. */
  bytes: number;
}

/** A XEP-0059 request: how many, and where from. */
export interface PageRequest {
  max?: number;
  after?: string;
  /** An id, or "" for the last page. */
  before?: string;
  index?: number;
}

/** The items [start, end) of the result set, and which end stays when the run must be cut. */
export interface Window {
  start: number;
  end: number;
  keepNewest: boolean;
}

/** A <set xmlns='…rsm'/> request, or null when it is malformed (bad-request). */
export function pageRequest(set: Element): PageRequest | null {
  const request: PageRequest = {};
  const count = (name: string): number | null | undefined => {
    const text = set.getChildText(name);
    if (text === null) return undefined;
    return /^\d{1,9}$/.test(text.trim()) ? Number(text.trim()) : null;
  };
  const max = count("max");
  const index = count("index");
  if (max === null || index === null) return null;
  if (max !== undefined) request.max = max;
  if (index !== undefined) request.index = index;
  const after = set.getChildText("after");
  const before = set.getChildText("before");
  if (after !== null) {
    if (after === "") return null;
    request.after = after;
  }
  if (before !== null) request.before = before;
  return request;
}

/**
 * The run of `set` a request asks for: without a page, the whole set.
 * Null when an after or before id is not in the set (item-not-found,
 * XEP-0059 §2.5).
 */
export function pageWindow(set: readonly ItemSize[], page: PageRequest | null): Window | null {
  if (!page) return { start: 0, end: set.length, keepNewest: true };
  const max = page.max ?? Infinity;
  const position = (id: string): number => set.findIndex((item) => item.id === id);
  if (page.after !== undefined) {
    const at = position(page.after);
    return at < 0 ? null : { start: at + 1, end: Math.min(set.length, at + 1 + max), keepNewest: false };
  }
  if (page.before !== undefined) {
    const at = page.before === "" ? set.length : position(page.before);
    return at < 0 ? null : { start: Math.max(0, at - max), end: at, keepNewest: true };
  }
  const start = Math.min(set.length, page.index ?? 0);
  return { start, end: Math.min(set.length, start + max), keepNewest: false };
}

/** The longest part of a window, from its kept end, whose items' cost fits within `budget`. */
export function fitWindow(set: readonly ItemSize[], window: Window, budget: number, cost: (item: ItemSize) => number): Window {
  let used = 0;
  if (window.keepNewest) {
    let start = window.end;
    while (start > window.start && used + cost(set[start - 1]!) <= budget) used += cost(set[--start]!);
    return { ...window, start };
  }
  let end = window.start;
  while (end < window.end && used + cost(set[end]!) <= budget) used += cost(set[end++]!);
  return { ...window, end };
}

/** XEP-0059 §2.1: the page's first (with its index) and last ids, and the size of the whole set. */
export function resultSet(set: readonly ItemSize[], page: Window): Element {
  const el = new Element("set", { xmlns: NS_RSM });
  if (page.end > page.start) {
    el.c("first", { index: String(page.start) }).t(set[page.start]!.id);
    el.c("last").t(set[page.end - 1]!.id);
  }
  el.c("count").t(String(set.length));
  return el;
}
