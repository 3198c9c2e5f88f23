// Module key-value puts of one turn share one SQLite commit
// (xdb-sql/sqlite-turn-batch.ts): each still answers for itself, a quota's
// refusal or a missing account failing that put alone; a lazy put waits for
// company up to a second; and the store's close commits what is waiting.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { openStore } from "../xdb-sql/open-store.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-kv-batch-"));
const [alice, bob] = ["alice@example.com", "bob@example.com"];

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function opened(name: string) {
  const store = await openStore(`sqlite:${path.join(tmp, name)}`);
  const credentials = await deriveCredentials("pw", 64);
  await store.createAccounts([alice, bob].map((user) => ({ user, credentials })));
  return store;
}

describe("SQLite key-value puts of one turn", () => {
  it("answer each put for itself: written, refused by the quota, or failed for want of its account", async () => {
    const store = await opened("one-turn.sqlite");
    const quota = { keys: 1, bytes: 1000 };
    const puts = [
      store.putKv(alice, "last", "logout", "1"),
      store.putKv(bob, "blocking", "a@example.net", "", quota),
      store.putKv(bob, "blocking", "b@example.net", "", quota),
      store.putKv("nobody@example.com", "last", "logout", "2"),
      store.putKv(alice, "last", "logout", "3"),
    ];
    const settled = await Promise.allSettled(puts);
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value : String(s.reason)))).toEqual([
      true,
      true,
      false,
      "Error: no such account: nobody@example.com",
      true,
    ]);
    expect(await store.getKv(alice, "last", "logout")).toBe("3");
    expect(await store.listKvKeys(bob, "blocking")).toEqual(["a@example.net"]);
    await store.close();
  });

  it("commits a lazy put with the next one that cannot wait, or on its own within a second", async () => {
    const store = await opened("lazy.sqlite");
    let done = false;
    const lazy = store.putKv(alice, "last", "logout", "5", undefined, true).then((ok) => (done = ok));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(await store.putKv(bob, "last", "logout", "6")).toBe(true);
    expect(await lazy).toBe(true);
    expect(await store.putKv(bob, "last", "logout", "7", undefined, true)).toBe(true);
    expect(await store.getKv(bob, "last", "logout")).toBe("7");
    await store.close();
  });

  it("commits the puts still waiting when the store closes", async () => {
    const store = await opened("close.sqlite");
    const put = store.putKv(alice, "last", "logout", "4", undefined, true);
    await store.close();
    expect(await put).toBe(true);
    const again = await openStore(`sqlite:${path.join(tmp, "close.sqlite")}`);
    expect(await again.getKv(alice, "last", "logout")).toBe("4");
    await again.close();
  });
});
