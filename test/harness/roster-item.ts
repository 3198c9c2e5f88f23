// Roster items for tests: a visible contact with nothing set, then
// overrides; and mutual subscriptions written into a farm's store.
import { openStore } from "../../xdb-sql/open-store.js";
import type { RosterItem } from "../../xdb-sql/store.js";

export function rosterItem(contact: string, over: Partial<RosterItem> = {}): RosterItem {
  return { contact, name: null, subscription: "none", askOut: false, pendingIn: false, visible: true, groups: [], ...over };
}

/** Makes each pair of accounts subscribed to each other's presence, in a farm's store. */
export async function mutualInStore(storeUrl: string, pairs: readonly (readonly [string, string])[]): Promise<void> {
  const store = await openStore(storeUrl);
  try {
    for (const [a, b] of pairs) {
      await store.putRosterItem(a, rosterItem(b, { subscription: "both" }));
      await store.putRosterItem(b, rosterItem(a, { subscription: "both" }));
    }
  } finally {
    await store.close();
  }
}
