// Rows as both SQL drivers read and write them: the one place that maps the
// Store's types to columns, so SQLite and MySQL cannot disagree.
import type { Credentials, RosterItem, ScramKeys, Subscription } from "./store.js";

export interface AccountRow {
  sha1_salt: Buffer;
  sha1_iterations: number;
  sha1_stored_key: Buffer;
  sha1_server_key: Buffer;
  sha256_salt: Buffer;
  sha256_iterations: number;
  sha256_stored_key: Buffer;
  sha256_server_key: Buffer;
}

export interface RosterRow {
  contact: string;
  name: string | null;
  subscription: string;
  ask_out: number;
  pending_in: number;
  visible: number;
  groups_json: string;
}

export interface OfflineRow {
  id: number;
  xml: string;
  stored_at: number;
}

export type CredentialParams = [
  Buffer, number, Buffer, Buffer, // SHA-1
  Buffer, number, Buffer, Buffer, // SHA-256
];

export const SUBSCRIPTIONS: ReadonlySet<string> = new Set<Subscription>(["none", "to", "from", "both"]);


export function credentialParams(c: Credentials): CredentialParams {
  const one = (k: ScramKeys, hash: string): [Buffer, number, Buffer, Buffer] => {
    if (!Number.isSafeInteger(k.iterations) || k.iterations < 1) {
      throw new RangeError(`SCRAM ${hash} iteration count must be a positive integer`);
    }
    return [k.salt, k.iterations, k.storedKey, k.serverKey];
  };
  return [...one(c["SHA-1"], "SHA-1"), ...one(c["SHA-256"], "SHA-256")];
}

export function rosterItem(row: RosterRow): RosterItem {
  if (!SUBSCRIPTIONS.has(row.subscription)) {
    throw new Error(`roster row for ${row.contact} has bad subscription "${row.subscription}"`);
  }
  const parsed: unknown = JSON.parse(row.groups_json);
  return {
    contact: row.contact,
    name: row.name,
    subscription: row.subscription as Subscription,
    askOut: row.ask_out === 1,
    pendingIn: row.pending_in === 1,
    visible: row.visible === 1,
    // Tolerate a hand-edited row rather than fail the whole roster.
    groups: Array.isArray(parsed) ? parsed.filter((g): g is string => typeof g === "string") : [],
  };
}

/** The Store's credentials from an accounts row. */
export function credentialsOf(r: AccountRow): Credentials {
  return {
    "SHA-1": { salt: r.sha1_salt, iterations: r.sha1_iterations, storedKey: r.sha1_stored_key, serverKey: r.sha1_server_key },
    "SHA-256": { salt: r.sha256_salt, iterations: r.sha256_iterations, storedKey: r.sha256_stored_key, serverKey: r.sha256_server_key },
  };
}

export type RosterParams = [string, string, string | null, string, number, number, number, string];

/** The roster row's values in column order (user, contact, …), after checking the subscription. */
export function rosterParams(user: string, item: RosterItem): RosterParams {
  if (!SUBSCRIPTIONS.has(item.subscription)) throw new RangeError(`bad roster subscription "${item.subscription}"`);
  return [
    user,
    item.contact,
    item.name,
    item.subscription,
    item.askOut ? 1 : 0,
    item.pendingIn ? 1 : 0,
    item.visible ? 1 : 0,
    JSON.stringify(item.groups),
  ];
}
