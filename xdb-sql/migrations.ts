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
