// The logical schema, as an ordered list of migrations shared by every SQL
// driver. Each migration carries its DDL per dialect, SQLite and MySQL/MariaDB
// side by side, so the two cannot drift apart in version numbers or meaning.
//
// Portability rules kept here, so the MySQL text is a translation rather than
// a redesign:
//  - plain types only (TEXT, INTEGER, BLOB); booleans are INTEGER 0/1;
//    timestamps are INTEGER milliseconds since the epoch (UTC, no time zones);
//  - foreign keys as table constraints (MySQL silently ignores a REFERENCES
//    written on a column);
//  - indices created explicitly by name;
//  - no column named after a MySQL reserved word: "groups" (MySQL 8) and
//    "stored" are reserved, hence groups_json and stored_at;
//  - one statement per string, since MySQL drivers run one at a time.
//
// Never add a password column: accounts hold SCRAM keys only (RFC 5802).

export interface Migration {
  /** 1, 2, 3, … with no gaps; schema_version records the highest applied. */
  readonly version: number;
  readonly description: string;
  /** SQLite statements, run in order inside one transaction. */
  readonly sqlite: readonly string[];
  /** MySQL/MariaDB statements for the same logical change. MySQL commits DDL at once, so these run one by one, not as one transaction. */
  readonly mysql: readonly string[];
  /**
   * The SQLite statements rebuild a table that others reference (SQLite
   * cannot drop a NOT NULL in place): they run with foreign keys off, or
   * dropping the old table would cascade into its children, and the keys
   * are checked before the commit.
   */
  readonly sqliteRebuild?: boolean;
}

/**
 * The bookkeeping table, created before any migration runs (so it is not a
 * migration itself). One row per applied migration; the schema version is
 * the highest `version`, 0 when the table is empty or missing.
 */
export const SCHEMA_VERSION_TABLE: { readonly sqlite: string; readonly mysql: string } = {
  sqlite: `CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`,
  mysql: `CREATE TABLE IF NOT EXISTS schema_version (
    version INT NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    applied_at BIGINT NOT NULL
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
};

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "accounts with SCRAM keys, rosters, offline messages",
    sqlite: [
      // `user` is the bare JID, localpart and domain lowercased by the caller.
      // Both SCRAM hashes are always present: a client may pick either.
      `CREATE TABLE accounts (
        user TEXT NOT NULL PRIMARY KEY,
        sha1_salt BLOB NOT NULL,
        sha1_iterations INTEGER NOT NULL,
        sha1_stored_key BLOB NOT NULL,
        sha1_server_key BLOB NOT NULL,
        sha256_salt BLOB NOT NULL,
        sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB NOT NULL,
        sha256_server_key BLOB NOT NULL,
        created_at INTEGER NOT NULL
      )`,
      // The foreign keys stop a recreated account from inheriting a deleted
      // one's roster or messages if a write races the deletion.
      `CREATE TABLE roster (
        user TEXT NOT NULL,
        contact TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask_out INTEGER NOT NULL CHECK (ask_out IN (0, 1)),
        pending_in INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
        visible INTEGER NOT NULL CHECK (visible IN (0, 1)),
        groups_json TEXT NOT NULL,
        PRIMARY KEY (user, contact),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      // AUTOINCREMENT so an id is never reused: a c2s that loaded messages
      // and deletes them by id after delivery must not hit a newer message
      // that took a freed id.
      `CREATE TABLE offline (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        xml TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      `CREATE INDEX offline_user_id ON offline (user, id)`,
    ],
    // JIDs are stored as their UTF-8 bytes (VARBINARY): the caller already
    // normalized them, so comparisons must be exact, and InnoDB's 3072-byte
    // key limit then holds two of them (1535 bytes each) in the roster key.
    mysql: [
      `CREATE TABLE accounts (
        user VARBINARY(1535) NOT NULL PRIMARY KEY,
        sha1_salt VARBINARY(255) NOT NULL,
        sha1_iterations INT NOT NULL,
        sha1_stored_key VARBINARY(64) NOT NULL,
        sha1_server_key VARBINARY(64) NOT NULL,
        sha256_salt VARBINARY(255) NOT NULL,
        sha256_iterations INT NOT NULL,
        sha256_stored_key VARBINARY(64) NOT NULL,
        sha256_server_key VARBINARY(64) NOT NULL,
        created_at BIGINT NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE roster (
        user VARBINARY(1535) NOT NULL,
        contact VARBINARY(1535) NOT NULL,
        name TEXT,
        subscription VARCHAR(4) NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask_out TINYINT NOT NULL CHECK (ask_out IN (0, 1)),
        pending_in TINYINT NOT NULL CHECK (pending_in IN (0, 1)),
        visible TINYINT NOT NULL CHECK (visible IN (0, 1)),
        groups_json MEDIUMTEXT NOT NULL,
        PRIMARY KEY (user, contact),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE offline (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user VARBINARY(1535) NOT NULL,
        xml MEDIUMTEXT NOT NULL,
        stored_at BIGINT NOT NULL,
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE INDEX offline_user_id ON offline (user, id)`,
    ],
  },
  {
    version: 2,
    description: "accounts with one SCRAM hash (imports); vCards, private XML, PEP",
    sqliteRebuild: true,
    sqlite: [
      // Both hashes become optional, at least one present: Prosody exports
      // SHA-1 keys only, and the other is added at the first PLAIN login.
      `CREATE TABLE accounts_v2 (
        user TEXT NOT NULL PRIMARY KEY,
        sha1_salt BLOB,
        sha1_iterations INTEGER,
        sha1_stored_key BLOB,
        sha1_server_key BLOB,
        sha256_salt BLOB,
        sha256_iterations INTEGER,
        sha256_stored_key BLOB,
        sha256_server_key BLOB,
        created_at INTEGER NOT NULL,
        CHECK (sha1_salt IS NOT NULL OR sha256_salt IS NOT NULL)
      )`,
      `INSERT INTO accounts_v2 SELECT user, sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
        sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key, created_at FROM accounts`,
      `DROP TABLE accounts`,
      `ALTER TABLE accounts_v2 RENAME TO accounts`,
      `CREATE TABLE vcard (
        user TEXT NOT NULL PRIMARY KEY,
        xml TEXT NOT NULL,
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      `CREATE TABLE private_xml (
        user TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        xml TEXT NOT NULL,
        PRIMARY KEY (user, namespace, name),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      `CREATE TABLE pep_nodes (
        user TEXT NOT NULL,
        node TEXT NOT NULL,
        config_json TEXT NOT NULL,
        PRIMARY KEY (user, node),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      // seq orders a node's items by publication: a republished id moves to
      // the end, and trimming to max_items drops the lowest.
      `CREATE TABLE pep_items (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        node TEXT NOT NULL,
        item_id TEXT NOT NULL,
        xml TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        UNIQUE (user, node, item_id),
        FOREIGN KEY (user, node) REFERENCES pep_nodes (user, node) ON DELETE CASCADE
      )`,
      `CREATE INDEX pep_items_node_seq ON pep_items (user, node, seq)`,
    ],
    // Key lengths stay inside InnoDB's 3072 bytes: user 1535 + namespace or
    // node 1024 + name or item id 255.
    mysql: [
      `ALTER TABLE accounts
        MODIFY sha1_salt VARBINARY(255) NULL, MODIFY sha1_iterations INT NULL,
        MODIFY sha1_stored_key VARBINARY(64) NULL, MODIFY sha1_server_key VARBINARY(64) NULL,
        MODIFY sha256_salt VARBINARY(255) NULL, MODIFY sha256_iterations INT NULL,
        MODIFY sha256_stored_key VARBINARY(64) NULL, MODIFY sha256_server_key VARBINARY(64) NULL,
        ADD CONSTRAINT accounts_has_keys CHECK (sha1_salt IS NOT NULL OR sha256_salt IS NOT NULL)`,
      `CREATE TABLE vcard (
        user VARBINARY(1535) NOT NULL PRIMARY KEY,
        xml MEDIUMTEXT NOT NULL,
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE private_xml (
        user VARBINARY(1535) NOT NULL,
        namespace VARBINARY(1024) NOT NULL,
        name VARBINARY(255) NOT NULL,
        xml MEDIUMTEXT NOT NULL,
        PRIMARY KEY (user, namespace, name),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE pep_nodes (
        user VARBINARY(1535) NOT NULL,
        node VARBINARY(1024) NOT NULL,
        config_json MEDIUMTEXT NOT NULL,
        PRIMARY KEY (user, node),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE pep_items (
        seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user VARBINARY(1535) NOT NULL,
        node VARBINARY(1024) NOT NULL,
        item_id VARBINARY(255) NOT NULL,
        xml MEDIUMTEXT NOT NULL,
        published_at BIGINT NOT NULL,
        UNIQUE KEY pep_items_id (user, node, item_id),
        FOREIGN KEY (user, node) REFERENCES pep_nodes (user, node) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE INDEX pep_items_node_seq ON pep_items (user, node, seq)`,
    ],
  },
  {
    version: 3,
    description: "offline messages with their size, for per-user quotas",
    // The size in UTF-8 bytes, kept with the row so that a user's usage is
    // summed from an index (user, id, bytes) without reading the messages.
    // The new index starts with user, so the foreign key still has one when
    // the old index goes.
    sqlite: [
      `ALTER TABLE offline ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0`,
      `UPDATE offline SET bytes = LENGTH(CAST(xml AS BLOB))`,
      `CREATE INDEX offline_user_bytes ON offline (user, id, bytes)`,
      `DROP INDEX offline_user_id`,
    ],
    // One ALTER, so that a crash leaves either the old table or the new one.
    mysql: [
      `ALTER TABLE offline ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0,
        ADD INDEX offline_user_bytes (user, id, bytes), DROP INDEX offline_user_id`,
      // LENGTH counts bytes in MySQL (CHAR_LENGTH counts characters).
      `UPDATE offline SET bytes = LENGTH(xml)`,
    ],
  },
  {
    version: 4,
    description: "offline messages with the origin of the stanza, stored once per user",
    // A client's stanza resent after a failover carries the origin it had the
    // first time (docs/protocol.md §2): the unique index makes the second store
    // find the first instead of adding a copy. Messages without one (imports,
    // and those stored before this migration) are NULL, which the index
    // leaves unconstrained.
    sqlite: [
      `ALTER TABLE offline ADD COLUMN origin TEXT`,
      `CREATE UNIQUE INDEX offline_user_origin ON offline (user, origin) WHERE origin IS NOT NULL`,
    ],
    // InnoDB has no partial index, but a unique one admits any number of NULLs;
    // bytes, as for JIDs, so that origins compare exactly. 1535 + 300 bytes of key.
    mysql: [`ALTER TABLE offline ADD COLUMN origin VARBINARY(300) NULL, ADD UNIQUE INDEX offline_user_origin (user, origin)`],
  },
  {
    version: 5,
    description: "the router pair's lease",
    // One row (docs/protocol.md §1.9): the router that holds it, and until when
    // by the database's clock, in ms. It always exists, so that taking it is
    // one UPDATE; an empty holder with expiry 0 is free.
    sqlite: [
      `CREATE TABLE router_lease (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `INSERT INTO router_lease (id, holder, expires_at) VALUES (1, '', 0)`,
    ],
    mysql: [
      `CREATE TABLE router_lease (
        id TINYINT NOT NULL PRIMARY KEY CHECK (id = 1),
        holder VARBINARY(255) NOT NULL,
        expires_at BIGINT NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `INSERT INTO router_lease (id, holder, expires_at) VALUES (1, '', 0)`,
    ],
  },
  {
    version: 6,
    description: "storage modules declare: key-value entries and archives per user",
    // Names for what modules keep (sm/module-storage.ts), so that a feature
    // needs no table of its own. An archive is ordered by (stamp, seq): seq,
    // never reused, breaks ties between items of one millisecond, and
    // item_id is the opaque id clients see. `with` cannot be in a MySQL key
    // beside the user (1535 + 1535 bytes): with_hash, 48 bits of its SHA-256,
    // is, and with_jid is compared on the rows the index finds. No index
    // leads with anything but the user: given one on (archive_name, stamp)
    // for retention, MariaDB paged a user's archive through it, reading
    // every user's items (retention goes user by user instead).
    sqlite: [
      `CREATE TABLE module_kv (
        user TEXT NOT NULL,
        store_name TEXT NOT NULL,
        item_key TEXT NOT NULL,
        item_value TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (user, store_name, item_key),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      `CREATE TABLE module_archive (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        archive_name TEXT NOT NULL,
        item_id TEXT NOT NULL,
        stamp INTEGER NOT NULL,
        with_jid TEXT NOT NULL,
        with_hash INTEGER NOT NULL,
        xml TEXT NOT NULL,
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      )`,
      `CREATE UNIQUE INDEX module_archive_id ON module_archive (user, archive_name, item_id)`,
      `CREATE INDEX module_archive_time ON module_archive (user, archive_name, stamp, seq)`,
      `CREATE INDEX module_archive_with ON module_archive (user, archive_name, with_hash, stamp, seq)`,
    ],
    // Keys: 1535 + 64 + 1024 bytes for an entry, 1535 + 64 + 8 + 8 + 8 for the `with` index.
    mysql: [
      `CREATE TABLE module_kv (
        user VARBINARY(1535) NOT NULL,
        store_name VARBINARY(64) NOT NULL,
        item_key VARBINARY(1024) NOT NULL,
        item_value MEDIUMTEXT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (user, store_name, item_key),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      `CREATE TABLE module_archive (
        seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user VARBINARY(1535) NOT NULL,
        archive_name VARBINARY(64) NOT NULL,
        item_id VARBINARY(255) NOT NULL,
        stamp BIGINT NOT NULL,
        with_jid VARBINARY(1535) NOT NULL,
        with_hash BIGINT NOT NULL,
        xml MEDIUMTEXT NOT NULL,
        UNIQUE KEY module_archive_id (user, archive_name, item_id),
        KEY module_archive_time (user, archive_name, stamp, seq),
        KEY module_archive_with (user, archive_name, with_hash, stamp, seq),
        FOREIGN KEY (user) REFERENCES accounts (user) ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    ],
  },
  {
    version: 7,
    description: "accounts an admin disabled",
    // 1: the account may not log in (SASL account-disabled, RFC 6120 §6.5.1) and keeps all it holds (docs/console.md).
    sqlite: [`ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0`],
    mysql: [`ALTER TABLE accounts ADD COLUMN disabled TINYINT NOT NULL DEFAULT 0`],
  },
];

/** Throws if versions are not exactly 1, 2, 3, …: a gap or reorder is a coding error. */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
    }
    if (m.sqlite.length === 0) throw new Error(`migration ${m.version} has no SQLite statements`);
    if (!m.mysql || m.mysql.length === 0) throw new Error(`migration ${m.version} has no MySQL statements`);
  });
}

checkMigrations(MIGRATIONS);

/** The newest schema version this code knows. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS.length;

/** The error for a database written by a newer xfarm: shared wording for every driver. */
export function newerSchemaError(current: number, latest: number = LATEST_SCHEMA_VERSION): Error {
  return new Error(
    `database schema version ${current} is newer than this xfarm knows (${latest}); upgrade xfarm`,
  );
}
