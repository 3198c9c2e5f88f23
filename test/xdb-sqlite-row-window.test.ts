// Windows of a result (offline pages, a node's newest PEP items, those past
// its max_items) are read without a bound LIMIT or OFFSET, which would make
// SQLite prepare the statement again at every call (xdb-sql/sqlite-row-window.ts).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { firstRows, rowsAfter } from "../xdb-sql/sqlite-row-window.js";

const XDB = fileURLToPath(new URL("../xdb-sql/", import.meta.url));

describe("SQLite row windows", () => {
  it("take the first n rows, or those after them, and leave the connection free", () => {
    const db = new Database(":memory:");
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    const insert = db.prepare("INSERT INTO t (n) VALUES (?)");
    for (let n = 1; n <= 5; n++) insert.run(n);
    const all = db.prepare("SELECT n FROM t ORDER BY n").pluck();
    expect(firstRows(all.iterate(), 2)).toEqual([1, 2]);
    expect(firstRows(all.iterate(), 9)).toEqual([1, 2, 3, 4, 5]);
    expect(firstRows(all.iterate(), 0)).toEqual([]);
    expect(rowsAfter(all.iterate(), 3)).toEqual([4, 5]);
    expect(rowsAfter(all.iterate(), 5)).toEqual([]);
    // Each stopped early, and yet the connection takes a write (a busy one would throw).
    insert.run(6);
    expect(all.all()).toHaveLength(6);
    db.close();
  });

  it("are how the SQLite store reads them: no statement binds a LIMIT or an OFFSET", () => {
    const sources = fs.readdirSync(XDB).filter((f) => f.startsWith("sqlite-") && f.endsWith(".ts"));
    expect(sources.length).toBeGreaterThan(3);
    for (const file of sources) {
      expect(fs.readFileSync(path.join(XDB, file), "utf8"), file).not.toMatch(/\b(LIMIT|OFFSET)\s+\?/i);
    }
  });
});
