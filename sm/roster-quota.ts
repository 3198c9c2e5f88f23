// sm.max_roster_items: every record of a roster counts, pending inbound
// requests too (they are stored, and a stranger could otherwise grow them
// without bound). Records are only added in the owner's queue, so a count
// and the insert after it cannot race.
import { STORE_LIMITS } from "../xdb-sql/store.js";
import type { ModuleApi } from "./module-api.js";

/** Whether an account may keep a record for one more contact. */
export async function rosterHasRoom(api: ModuleApi, user: string): Promise<boolean> {
  return (await api.store.countRoster(user)) < api.limits.rosterItems;
}

/** Why a new contact was refused, for the error's text. */
export function rosterFull(api: ModuleApi): string {
  return `the roster is full (at most ${api.limits.rosterItems} items)`;
}

/**
 * Whether a contact's bare JID fits the roster's key (STORE_LIMITS.jid): RFC
 * 7622 allows longer ones, which are refused with not-acceptable and this text.
 */
export function tooLongToKeep(contact: string): string | null {
  return Buffer.byteLength(contact) > STORE_LIMITS.jid ? `a contact's JID may be at most ${STORE_LIMITS.jid} bytes to be kept in a roster` : null;
}
