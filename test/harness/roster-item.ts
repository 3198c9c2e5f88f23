// A roster item for tests: a visible contact with nothing set, then overrides.
import type { RosterItem } from "../../xdb-sql/store.js";

export function rosterItem(contact: string, over: Partial<RosterItem> = {}): RosterItem {
  return { contact, name: null, subscription: "none", askOut: false, pendingIn: false, visible: true, groups: [], ...over };
}
