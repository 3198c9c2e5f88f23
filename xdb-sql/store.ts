// The storage interface every driver implements. The sm and c2s see only
// this; SQLite (embedded default) and MySQL/MariaDB slot in behind it.
// Every method that changes data resolves only after the change is
// committed, so a caller may acknowledge a client once the promise settles.

import type { Credentials } from "../lib/sasl/scram-credentials.js";

/** RFC 6121 §2.1.2.5: the subscription attribute as the roster shows it. */
export type Subscription = "none" | "to" | "from" | "both";

export interface RosterItem {
  /** Bare JID of the contact. */
  contact: string;
  name: string | null;
  subscription: Subscription;
  /** "Pending Out": the user asked to subscribe and has no answer yet. */
  askOut: boolean;
  /** "Pending In": the contact asked to subscribe and the user has not answered. */
  pendingIn: boolean;
  /**
   * False for a record that only holds a pending inbound request from
   * someone the user never added (RFC 6121 §3.1.3): kept, but not shown
   * in roster results or pushes.
   */
  visible: boolean;
  groups: string[];
}

/** An account as a login sees it: its password keys, and whether an admin disabled it. */
export interface LoginAccount {
  credentials: Credentials;
  disabled: boolean;
}

export interface OfflineMessage {
  id: number;
  /** The stanza as it was routed, from stamped. */
  xml: string;
  /** When it was stored, for XEP-0203 delay. */
  stored: Date;
}

/** The most a user may hold in offline storage. */
export interface OfflineQuota {
  messages: number;
  /** UTF-8 bytes of the stored XML, summed. */
  bytes: number;
}

/**
 * The oldest messages up to `limit`, stopping before the one that would take
 * the page's XML over `maxBytes`; the first message always comes, whatever
 * its size, so that a page is never empty while messages remain.
 */
export interface OfflinePage {
  limit: number;
  maxBytes?: number;
}

/** How many of the oldest messages, sized `bytes` (oldest first), make a page. */
export function pageLength(bytes: readonly number[], page: OfflinePage): number {
  let total = 0;
  for (const [i, b] of bytes.entries()) {
    total += b;
    if (i > 0 && page.maxBytes !== undefined && total > page.maxBytes) return i;
  }
  return bytes.length;
}

export interface Store extends ModuleDataStore {
  /** The driver's name, for logs: "sqlite" or "mysql". */
  readonly kind: string;

  /**
   * Called when the database becomes unreachable (false) and reachable again
   * (true): once per outage, for a log line. While it is unreachable, every
   * method rejects with StoreUnavailableError (xdb-sql/store-errors.ts).
   */
  onAvailability?: (available: boolean, err?: unknown) => void;

  /** Brings the schema up to date; throws if the database is newer than this code. */
  migrate(): Promise<void>;
  /** The schema version in the database and the newest this code knows. */
  schemaVersion(): Promise<{ current: number; latest: number }>;

  // Accounts. `user` is always a bare JID, lowercased localpart and domain.
  createAccount(user: string, credentials: Credentials): Promise<boolean>;
  /** Creates many accounts in one transaction (load tests); returns how many were new. */
  createAccounts(accounts: { user: string; credentials: Credentials }[]): Promise<number>;
  setCredentials(user: string, credentials: Credentials): Promise<boolean>;
  getCredentials(user: string): Promise<Credentials | null>;
  /** Deletes the account with everything it holds. */
  deleteAccount(user: string): Promise<boolean>;
  accountExists(user: string): Promise<boolean>;
  /** Disables an account (it may not log in, and keeps all it holds) or enables it again; false when there is no such account. */
  setAccountDisabled(user: string, disabled: boolean): Promise<boolean>;
  /** What a login checks, in one read: the keys, and whether an admin disabled the account; null for none. */
  getLoginAccount(user: string): Promise<LoginAccount | null>;
  /** The disabled accounts, of one domain or all. */
  listDisabledAccounts(domain?: string): Promise<string[]>;
  listAccounts(domain?: string): Promise<string[]>;
  /**
   * Moves an account with everything it holds (roster, offline messages,
   * vCard, private XML, PEP, module data) to a new name in one transaction; false when
   * `from` does not exist or `to` does. Other rosters are not touched:
   * renameRosterContact does that.
   */
  renameAccount(from: string, to: string): Promise<boolean>;

  // Rosters.
  getRoster(user: string): Promise<RosterItem[]>;
  getRosterItem(user: string, contact: string): Promise<RosterItem | null>;
  /** How many records the roster holds, the invisible ones (pending requests) included. */
  countRoster(user: string): Promise<number>;
  putRosterItem(user: string, item: RosterItem): Promise<void>;
  deleteRosterItem(user: string, contact: string): Promise<void>;
  /** Every contact JID any roster holds, once each. */
  listRosterContacts(): Promise<string[]>;
  /**
   * Renames a contact in every roster that holds it, except rosters that
   * already hold `to`: those keep both items. Returns how many items were
   * renamed and whose rosters kept both.
   */
  renameRosterContact(from: string, to: string): Promise<{ renamed: number; kept: string[] }>;

  // Offline messages, oldest first. Ids only grow: a newer message has a
  // higher id than every message of any user stored before it.
  //
  // An `origin` (at most STORE_LIMITS.origin bytes) names the routed stanza a
  // message came from, unique in the farm for that stanza and its recipients:
  // while the user still holds a message with the same origin, storing again
  // adds nothing and returns that message's id, so a stanza resent after a
  // failover is stored once, however the stores race.
  /** Stores a message for later, whatever the user holds (imports); `stored` (default now) is what its XEP-0203 delay will say. */
  storeOffline(user: string, xml: string, stored?: Date, origin?: string): Promise<number>;
  /**
   * Stores a message unless the user would then hold more than the quota
   * (messages, or UTF-8 bytes of XML): null then, and nothing is stored.
   * A message already held by its origin is never refused: it costs nothing.
   * The check and the insert are one transaction.
   */
  storeOfflineWithin(user: string, xml: string, quota: OfflineQuota, origin?: string): Promise<number | null>;
  /** The user's messages, oldest first: all, or the oldest page. */
  loadOffline(user: string, page?: OfflinePage): Promise<OfflineMessage[]>;
  deleteOffline(user: string, ids: number[]): Promise<void>;
  countOffline(user: string): Promise<number>;

  // vCards (XEP-0054): the <vCard xmlns='vcard-temp'/> element as XML.
  getVcard(user: string): Promise<string | null>;
  /** Replaces the vCard; null deletes it. */
  setVcard(user: string, xml: string | null): Promise<void>;

  // Private XML storage (XEP-0049): one element per qualified name.
  getPrivate(user: string, key: PrivateKey): Promise<string | null>;
  /** Replaces the element stored under its name; null deletes it. */
  setPrivate(user: string, key: PrivateKey, xml: string | null): Promise<void>;
  /** Every element the user stored, for export. */
  listPrivate(user: string): Promise<{ key: PrivateKey; xml: string }[]>;
  /** The UTF-8 size of every element the user stored, to hold a quota. */
  privateSizes(user: string): Promise<{ key: PrivateKey; bytes: number }[]>;

  // PEP (XEP-0163): the user's nodes and their items.
  listPepNodes(user: string): Promise<PepNode[]>;
  getPepNode(user: string, node: string): Promise<PepNode | null>;
  /** Creates the node or replaces its configuration; its items stay. */
  putPepNode(user: string, node: PepNode): Promise<void>;
  /** Deletes the node with its items; false if there was none. */
  deletePepNode(user: string, node: string): Promise<boolean>;
  /**
   * Stores an item in an existing node, as the newest: an item with the same
   * id is replaced. Then only the newest `maxItems` are kept; the ids of the
   * items that went are returned.
   */
  publishPepItem(user: string, node: string, item: PepItem, maxItems: number): Promise<string[]>;
  /** A node's items, oldest first: all, the newest `last`, or those with the given ids. */
  getPepItems(user: string, node: string, select?: { last?: number; ids?: string[] }): Promise<PepItem[]>;
  /** The id and UTF-8 payload size of a node's items, oldest first: to choose a page without loading them. */
  pepItemSizes(user: string, node: string): Promise<{ id: string; bytes: number }[]>;
  /** Deletes one item; false if there was none. */
  retractPepItem(user: string, node: string, id: string): Promise<boolean>;

  // The router pair's lease (docs/protocol.md §1.9), timed by the database's
  // clock, never the routers'.
  /**
   * Takes or renews the lease for `ttlMs` if `holder` holds it or it has
   * expired, in one atomic statement; then says who holds it and for how much
   * longer (0 or less: expired, no one holds it).
   */
  acquireLease(holder: string, ttlMs: number): Promise<Lease>;
  /** Lets the lease go at once if `holder` holds it: a router that stops hands over without its peer waiting for it to expire. */
  releaseLease(holder: string): Promise<void>;

  close(): Promise<void>;
}

/** Who holds the router pair's lease, and for how many ms yet by the database's clock. */
export interface Lease {
  holder: string;
  remainingMs: number;
}

/**
 * The longest names the schema holds, in UTF-8 bytes (MySQL keys are capped
 * at 3072 bytes). Drivers refuse longer ones with a RangeError; modules
 * answer them with a stanza error first.
 */
export const STORE_LIMITS = {
  /** A bare JID (an account, a roster contact): two make the roster's key. RFC 7622 allows 2047. */
  jid: 1535,
  privateNamespace: 1024,
  privateName: 255,
  pepNode: 1024,
  pepItemId: 255,
  /** What names a routed stanza, for offline storage to recognise it resent (docs/protocol.md §2). */
  origin: 300,
  /** Who holds the router pair's lease: a router's name. */
  leaseHolder: 255,
  /** A module's key-value store or archive name (sm/module-storage.ts). */
  moduleStore: 64,
  kvKey: 1024,
  /** A key-value entry's value: the column's bound, whatever quota a module sets below it. */
  kvValue: 1_048_576,
  archiveId: 255,
  /** An archived item's XML. */
  archiveXml: 1_048_576,
} as const;

/** Throws a RangeError when a name is too long for its column. */
export function checkLength(what: keyof typeof STORE_LIMITS, value: string): void {
  if (Buffer.byteLength(value) > STORE_LIMITS[what]) {
    throw new RangeError(`${what} longer than ${STORE_LIMITS[what]} bytes`);
  }
}

/**
 * Storage a module declares (sm/module-storage.ts): key-value entries per
 * user, and archives per user paged in time order. Each is named by the
 * module (STORE_LIMITS.moduleStore); the rows go with their account when it
 * is deleted or renamed, and XEP-0227 export and import carry them.
 */
export interface ModuleDataStore {
  // Key-value: (user, store, key) → value, a string the module encodes.
  getKv(user: string, store: string, key: string): Promise<string | null>;
  /**
   * Sets a value. With a quota, refuses (false, nothing written) a write
   * that would leave the user's store over it, unless it does not grow the
   * store; the check and the write are one transaction. `lazy`: the write
   * may wait for other writes up to a second before its commit (on SQLite,
   * where each commit is an fsync); for an entry a crash may leave older.
   */
  putKv(user: string, store: string, key: string, value: string, quota?: KvQuota, lazy?: boolean): Promise<boolean>;
  /** False if there was no such key. */
  deleteKv(user: string, store: string, key: string): Promise<boolean>;
  /** The user's keys in a store, sorted by their bytes. */
  listKvKeys(user: string, store: string): Promise<string[]>;
  /** How many keys a user's store holds, and their keys' and values' UTF-8 bytes, summed. */
  kvUsage(user: string, store: string): Promise<KvQuota>;
  /** Deletes every key of a user's store; returns how many went. */
  clearKv(user: string, store: string): Promise<number>;
  /** Every entry of every store of the user, by store and key: for export. */
  listKv(user: string): Promise<{ store: string; key: string; value: string }[]>;

  // Archives, in time order: by stamp, then by when they were appended.
  /**
   * Appends items in one transaction (the bulk path: an import, a test's
   * fill); returns their ids, a new random one for an item without. An item
   * whose id the archive already holds is not added again.
   */
  appendArchive(user: string, archive: string, items: readonly NewArchiveItem[]): Promise<string[]>;
  /**
   * A page of the items that pass the filter: the first `limit` after
   * `after` (or from the start), or the last `limit` before `before` (`true`:
   * the end), oldest first either way. null when `after` or `before` names no
   * item of the archive.
   */
  queryArchive(user: string, archive: string, query: ArchiveQuery): Promise<ArchivePage | null>;
  /** How many items pass the filter (XEP-0059 count). */
  countArchive(user: string, archive: string, filter?: ArchiveFilter): Promise<number>;
  /** Deletes the user's items, all or those stamped before `before`; returns how many went. */
  deleteArchive(user: string, archive: string, before?: Date): Promise<number>;
  /** Keeps the newest `keep` items of the user's archive (its cap); returns how many went. */
  trimArchive(user: string, archive: string, keep: number): Promise<number>;
  /** The names of the archives the user has items in, sorted: for export. */
  listArchives(user: string): Promise<string[]>;
}

/** What a user's key-value store may hold: keys, and UTF-8 bytes of keys and values. */
export interface KvQuota {
  keys: number;
  bytes: number;
}

export interface ArchiveItem {
  /** Stable, unique in the archive, opaque: for MAM, the XEP-0359 stanza-id. */
  id: string;
  stamp: Date;
  /** The other party's bare JID. */
  with: string;
  xml: string;
}

export type NewArchiveItem = Omit<ArchiveItem, "id"> & { id?: string };

export interface ArchiveFilter {
  with?: string;
  /** Inclusive, as XEP-0313's start and end are. */
  start?: Date;
  end?: Date;
}

export interface ArchiveQuery extends ArchiveFilter {
  after?: string;
  /** An id, or true for the last page (XEP-0059 `<before/>`). */
  before?: string | true;
  /** The first page even when only `before` (an id) is given: XEP-0313's before-id field without RSM's <before/>. */
  forward?: boolean;
  limit: number;
}

export interface ArchivePage {
  items: ArchiveItem[];
  /** No item passes the filter beyond this page, in the direction paged. */
  complete: boolean;
}

/** An element's qualified name, under which XEP-0049 keeps it. */
export interface PrivateKey {
  namespace: string;
  name: string;
}

export interface PepNode {
  node: string;
  /**
   * The node configuration form's fields (XEP-0060 §16.4.4), e.g.
   * "pubsub#access_model" → "presence". Kept whole, so that an import
   * exports again unchanged; mod-pep acts on the fields it knows.
   */
  config: Record<string, string>;
}

export interface PepItem {
  id: string;
  /** The item's payload element as XML. */
  xml: string;
  published: Date;
}

/** Throws on a lease request no driver should run: an empty or too long holder, a ttl that is not a positive whole number of ms. */
export function checkLease(holder: string, ttlMs: number): void {
  if (!holder) throw new RangeError("a lease holder must be named");
  checkLength("leaseHolder", holder);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError(`bad lease ttl ${ttlMs}`);
}
