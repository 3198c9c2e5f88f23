// Brings the JIDs a store holds to their RFC 7622 form. Before PRECIS
// (lib/precis.ts), localparts and domains were only lowercased, so an
// account may be stored under a name that every lookup now maps elsewhere
// ("ａlice" in fullwidth, a decomposed "jürgen") or that is no longer a JID
// at all. `xfarm db migrate` runs this after the schema migrations; it is
// idempotent, so it may run again once the admin has settled what it left.
//
// - An account whose name normalizes to a free one is renamed, with all it
//   holds (Store.renameAccount).
// - Two accounts that are one JID now are never merged: both stay as they
//   are and are reported; the admin renames or deletes one and runs it again.
// - An account whose name is not a JID now is reported and left.
// - Roster contacts are renamed in every roster, except where the roster
//   already holds the normalized contact: that roster keeps both items.
import { bareOf, parseJid } from "../lib/jid.js";
import type { Store } from "./store.js";

export interface JidReport {
  /** Accounts moved to their normalized name: [stored, normalized]. */
  accountsRenamed: [string, string][];
  /** Roster contacts renamed (in every roster that had them): [stored, normalized]. */
  contactsRenamed: [string, string][];
  /** Accounts left for the admin to decide, one sentence each. */
  refused: string[];
  /** Roster items left as they were, one sentence each. */
  left: string[];
}

/** The account name `stored` normalizes to; null when it is not an account's JID now. */
function accountName(stored: string): string | null {
  const jid = parseJid(stored);
  return jid && jid.local && !jid.resource ? bareOf(stored) : null;
}

export async function normalizeStoredJids(store: Store): Promise<JidReport> {
  const report: JidReport = { accountsRenamed: [], contactsRenamed: [], refused: [], left: [] };
  const accounts = await store.listAccounts();
  const stored = new Set(accounts);
  const claims = new Map<string, string[]>();
  for (const account of accounts) {
    const name = accountName(account);
    if (name === account) continue;
    if (name === null) {
      report.refused.push(`${account} is not a valid JID under RFC 7622: rename it (xfarm user rename) or delete it`);
      continue;
    }
    claims.set(name, [...(claims.get(name) ?? []), account]);
  }
  for (const [name, olds] of claims) {
    const all = stored.has(name) ? [name, ...olds] : olds;
    if (all.length > 1) {
      report.refused.push(`${all.join(", ")} are one JID under RFC 7622 (${name}); none was changed: rename or delete all but one`);
    } else if (await store.renameAccount(olds[0]!, name)) {
      report.accountsRenamed.push([olds[0]!, name]);
    } else {
      report.refused.push(`${olds[0]} could not become ${name}: it was deleted, or ${name} created, meanwhile`);
    }
  }

  for (const contact of await store.listRosterContacts()) {
    const name = bareOf(contact);
    if (name === contact) continue;
    if (name === null) {
      report.left.push(`roster contact ${contact} is not a valid JID under RFC 7622; left as it is`);
      continue;
    }
    const { renamed, kept } = await store.renameRosterContact(contact, name);
    if (renamed > 0) report.contactsRenamed.push([contact, name]);
    if (kept.length > 0) report.left.push(`the rosters of ${kept.join(", ")} hold both ${contact} and ${name}; the first was left as it is`);
  }
  return report;
}
