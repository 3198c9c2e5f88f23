// Rows as both SQL drivers read and write them: the one place that maps the
// Store's types to columns, so SQLite and MySQL cannot disagree.
import type { RosterItem, Subscription } from "./store.js";
import type { Credentials, ScramKeys } from "../lib/sasl/scram-credentials.js";

/** Each hash's four columns are all set or all null (schema v2). */
export interface AccountRow {
  sha1_salt: Buffer | null;
  sha1_iterations: number | null;
  sha1_stored_key: Buffer | null;
  sha1_server_key: Buffer | null;
  sha256_salt: Buffer | null;
  sha256_iterations: number | null;
  sha256_stored_key: Buffer | null;
  sha256_server_key: Buffer | null;
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

/** salt, iterations, stored key, server key: all null for a hash the account lacks. */
type KeyParams = [Buffer | null, number | null, Buffer | null, Buffer | null];
export type CredentialParams = [...KeyParams, ...KeyParams]; // SHA-1, then SHA-256

export const SUBSCRIPTIONS: ReadonlySet<string> = new Set<Subscription>(["none", "to", "from", "both"]);


export function credentialParams(c: Credentials): CredentialParams {
  if (!c["SHA-1"] && !c["SHA-256"]) throw new RangeError("credentials hold no SCRAM keys");
  const one = (k: ScramKeys | undefined, hash: string): KeyParams => {
    if (!k) return [null, null, null, null];
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
  const c: Credentials = {};
  if (r.sha1_salt && r.sha1_iterations && r.sha1_stored_key && r.sha1_server_key) {
    c["SHA-1"] = { salt: r.sha1_salt, iterations: r.sha1_iterations, storedKey: r.sha1_stored_key, serverKey: r.sha1_server_key };
  }
  if (r.sha256_salt && r.sha256_iterations && r.sha256_stored_key && r.sha256_server_key) {
    c["SHA-256"] = { salt: r.sha256_salt, iterations: r.sha256_iterations, storedKey: r.sha256_stored_key, serverKey: r.sha256_server_key };
  }
  return c;
}

export interface PepItemRow {
  item_id: string;
  xml: string;
  published_at: number;
}

/** The JSON column holding a PEP node's configuration; tolerant of a hand-edited row. */
export function pepConfig(json: string): Record<string, string> {
  const parsed: unknown = JSON.parse(json);
  const config: Record<string, string> = {};
  if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
    for (const [k, v] of Object.entries(parsed)) if (typeof v === "string") config[k] = v;
  }
  return config;
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
