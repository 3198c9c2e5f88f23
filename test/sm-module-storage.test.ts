// The storage a module gets from its api (sm/module-storage.ts), over a real
// SQLite store: scoped to the module's names, held to the quota it declares,
// and retention across every account.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { moduleStorage } from "../sm/module-storage.js";
import { openStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-module-storage-"));
let store: Store;
const [alice, bob] = ["alice@example.com", "bob@example.com"];

beforeAll(async () => {
  store = await openStore(`sqlite:${path.join(tmp, "db.sqlite")}`);
  const credentials = await deriveCredentials("pw", 64);
  await store.createAccounts([alice, bob].map((user) => ({ user, credentials })));
});

afterAll(async () => {
  await store.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("api.storage", () => {
  it("keeps each module's key-value store apart, within the quota the module declares", async () => {
    const storage = moduleStorage(store);
    const blocking = storage.kv("blocking", { quota: { keys: 2, bytes: 1000 } });
    const other = storage.kv("other");
    expect(await blocking.put(alice, "romeo@example.net", "")).toBe(true);
    expect(await blocking.put(alice, "mallory@example.net", "")).toBe(true);
    expect(await blocking.put(alice, "eve@example.net", "")).toBe(false);
    expect(await other.put(alice, "eve@example.net", "x")).toBe(true);
    expect(await blocking.keys(alice)).toEqual(["mallory@example.net", "romeo@example.net"]);
    expect(await other.keys(alice)).toEqual(["eve@example.net"]);
    expect(await blocking.usage(alice)).toEqual({ keys: 2, bytes: "mallory@example.netromeo@example.net".length });
    expect(await blocking.get(bob, "romeo@example.net")).toBeNull();
    expect(await blocking.delete(alice, "romeo@example.net")).toBe(true);
    expect(await blocking.clear(alice)).toBe(1);
    expect(await other.get(alice, "eve@example.net")).toBe("x");
  });

  it("appends to a module's archive, pages it, and expires it for every account", async () => {
    const mam = moduleStorage(store).archive("mam");
    const old = new Date("2020-01-01T00:00:00Z");
    const [id] = await mam.append(alice, { stamp: old, with: bob, xml: "<message id='old'/>" }, { stamp: new Date(), with: bob, xml: "<message id='new'/>" });
    await mam.append(bob, { stamp: old, with: alice, xml: "<message/>" });
    expect((await mam.query(alice, { limit: 1, after: id }))!.items.map((i) => i.xml)).toEqual(["<message id='new'/>"]);
    expect(await mam.count(alice)).toBe(2);
    expect(await moduleStorage(store).archive("other").count(alice)).toBe(0);
    expect(await mam.expire(new Date("2021-01-01T00:00:00Z"))).toBe(2);
    expect(await mam.count(alice)).toBe(1);
    expect(await mam.count(bob)).toBe(0);
    expect(await mam.trim(alice, 0)).toBe(1);
    expect(await mam.delete(alice)).toBe(0);
  });
});
