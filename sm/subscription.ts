// RFC 6121 §2.1.2.5: a roster item's subscription is two directions, "to"
// (the user receives the contact's presence) and "from" (the contact
// receives the user's). The state machines in Appendix A flip one at a time.
import type { RosterItem, Subscription } from "../xdb-sql/store.js";

export function hasTo(s: Subscription): boolean {
  return s === "to" || s === "both";
}

export function hasFrom(s: Subscription): boolean {
  return s === "from" || s === "both";
}

export function subscription(to: boolean, from: boolean): Subscription {
  if (to) return from ? "both" : "to";
  return from ? "from" : "none";
}

/** The record for a contact the user has no item for; invisible until the user adds it. */
export function blankItem(contact: string): RosterItem {
  return { contact, name: null, subscription: "none", askOut: false, pendingIn: false, visible: false, groups: [] };
}

/** An item that records nothing: no subscription either way, nothing pending. */
export function isBlank(item: RosterItem): boolean {
  return item.subscription === "none" && !item.askOut && !item.pendingIn;
}
