// The storage a module declares, as the module sees it (api.storage): a
// key-value store or an archive under the module's own name, per user. The
// rows live in the generic tables of schema v6 (xdb-sql/store.ts,
// ModuleDataStore), so a feature needs no table, no driver code and no
// export code of its own: they go with the account when it is deleted or
// renamed, and `xfarm export` and `import` carry them (docs/architecture.md).
//
// Values are strings: JSON is recommended for a module's own records (one
// parse, no namespace to carry); XML where the value is an element handed
// back to clients as it is. The export writes either as text.
import type { ArchiveFilter, ArchivePage, ArchiveQuery, KvQuota, NewArchiveItem, Store } from "../xdb-sql/store.js";

export interface ModuleKv {
  get(user: string, key: string): Promise<string | null>;
  /** False when the store's quota refuses it (nothing is written): answer the client with an error. */
  put(user: string, key: string, value: string): Promise<boolean>;
  /** False if there was no such key. */
  delete(user: string, key: string): Promise<boolean>;
  keys(user: string): Promise<string[]>;
  /** Keys held and their bytes (keys and values, UTF-8), against the quota. */
  usage(user: string): Promise<KvQuota>;
  clear(user: string): Promise<number>;
}

export interface ModuleArchive {
  /** Appends items (one transaction); returns their ids, new random ones for items without. */
  append(user: string, ...items: NewArchiveItem[]): Promise<string[]>;
  /** A page, oldest first; null when `after` or `before` names no item (XEP-0313: item-not-found). */
  query(user: string, query: ArchiveQuery): Promise<ArchivePage | null>;
  count(user: string, filter?: ArchiveFilter): Promise<number>;
  /** Deletes the user's items, all or those older than `before`. */
  delete(user: string, before?: Date): Promise<number>;
  /** Keeps the newest `keep` items: the module's cap, applied when it chooses (it costs a scan of the items beyond). */
  trim(user: string, keep: number): Promise<number>;
  /** Retention for every account: deletes the items older than `before`, one account at a time (each a range of its index). */
  expire(before: Date): Promise<number>;
}

export interface KvOptions {
  /** What one user's store may hold; none: only the store's column bounds (STORE_LIMITS). */
  quota?: KvQuota;
  /**
   * Puts may wait up to a second for others to share their commit, and
   * resolve only then: for entries a crash may leave older (mod-last's
   * logout time), never for what a client was told is saved.
   */
  lazy?: boolean;
}

export interface ModuleStorage {
  kv(name: string, options?: KvOptions): ModuleKv;
  archive(name: string): ModuleArchive;
}

export function moduleStorage(store: Store): ModuleStorage {
  return {
    kv: (name, options = {}) => ({
      get: (user, key) => store.getKv(user, name, key),
      put: (user, key, value) => store.putKv(user, name, key, value, options.quota, options.lazy),
      delete: (user, key) => store.deleteKv(user, name, key),
      keys: (user) => store.listKvKeys(user, name),
      usage: (user) => store.kvUsage(user, name),
      clear: (user) => store.clearKv(user, name),
    }),
    archive: (name) => ({
      append: (user, ...items) => store.appendArchive(user, name, items),
      query: (user, query) => store.queryArchive(user, name, query),
      count: (user, filter) => store.countArchive(user, name, filter),
      delete: (user, before) => store.deleteArchive(user, name, before),
      trim: (user, keep) => store.trimArchive(user, name, keep),
      expire: async (before) => {
        let gone = 0;
        for (const user of await store.listAccounts()) gone += await store.deleteArchive(user, name, before);
        return gone;
      },
    }),
  };
}
