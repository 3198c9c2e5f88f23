// The storage interface every driver implements. The sm and c2s see only
// this; SQLite (embedded default) and MySQL/MariaDB slot in behind it.
// Every method that changes data resolves only after the change is
// committed, so a caller may acknowledge a client once the promise settles.

/** SCRAM keys for one hash (RFC 5802): never the password itself. */
export interface ScramKeys {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramHash = "SHA-1" | "SHA-256";

export type Credentials = Record<ScramHash, ScramKeys>;

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

export interface OfflineMessage {
  id: number;
  /** The stanza as it was routed, from stamped. */
  xml: string;
  /** When it was stored, for XEP-0203 delay. */
  stored: Date;
}

export interface Store {
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
  /** Deletes the account with its roster and offline messages. */
  deleteAccount(user: string): Promise<boolean>;
  accountExists(user: string): Promise<boolean>;
  listAccounts(domain?: string): Promise<string[]>;

  // Rosters.
  getRoster(user: string): Promise<RosterItem[]>;
  getRosterItem(user: string, contact: string): Promise<RosterItem | null>;
  putRosterItem(user: string, item: RosterItem): Promise<void>;
  deleteRosterItem(user: string, contact: string): Promise<void>;

  // Offline messages, oldest first.
  storeOffline(user: string, xml: string): Promise<number>;
  loadOffline(user: string): Promise<OfflineMessage[]>;
  deleteOffline(user: string, ids: number[]): Promise<void>;
  countOffline(user: string): Promise<number>;

  close(): Promise<void>;
}
