// A client that sends faster than its rate (c2s.rate_*) on a real farm: it is
// read more slowly (the front end reports it as throttled), everyone else on
// the same front end keeps chatting, what it managed to send arrives in
// order with nothing missing, and it is cut off with policy-violation once it
// has stayed over its rate for c2s.rate_cutoff.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { processStats, survivors, type ProcessStat } from "./harness/processes.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("per-client rates", () => {
  let farm: Farm;
  let port: number;
  let alice: TestClient;
  let bob: TestClient;
  let before: Record<string, ProcessStat>;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, c2s: { rate_bytes: 4096, rate_burst: 2, rate_cutoff: 4 } });
    await farm.start();
    for (const u of ["alice", "bob", "mallory"]) await farm.addUser(`${u}@localhost`, `${u}-pw`);
    port = farm.c2sPorts[0]!.port;
    alice = await connectClient({ port, username: "alice", password: "alice-pw" });
    bob = await connectClient({ port, username: "bob", password: "bob-pw" });
    before = processStats(farm, ["router-1", "sm-1", "c2s-1"]);
  });

  afterAll(async () => {
    await alice?.stop();
    await bob?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("slows a flooding client, keeps serving the others, and cuts the flooder off in the end", async () => {
    const mallory = await connectClient({ port, username: "mallory", password: "mallory-pw" });
    const cut = new Promise<string>((resolve) => mallory.xmpp.on("error", (err) => resolve(err.condition ?? String(err))));
    // 400 messages of 1 KiB: 100 s of its 4 KiB/s.
    const body = "f".repeat(1024);
    void (async () => {
      for (let i = 0; i < 400; i++) await mallory.xmpp.write(`<message to='${bob.jid}' id='f${i}' type='chat'><body>${body}</body></message>`).catch(() => {});
    })();
    const throttled = async () => {
      const entries = await farm.status();
      return entries.find((e) => e.name === "c2s-1")?.load?.throttled ?? 0;
    };
    await expect.poll(throttled, { timeout: 10_000, interval: 300 }).toBeGreaterThan(0);
    // Meanwhile the others on the same front end are served as usual.
    await alice.xmpp.send(xml("message", { to: bob.jid, id: "a1", type: "chat" }, xml("body", {}, "hello")));
    await bob.next((s) => s.is("message") && s.attrs.id === "a1");
    expect(await cut).toBe("policy-violation");
    await mallory.stop();
    // Whatever of the flood the front end took arrived, in order, none missing.
    const ids = bob.stanzas.filter((s) => s.is("message") && String(s.attrs.id).startsWith("f")).map((s) => Number(String(s.attrs.id).slice(1)));
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThan(400);
    expect(ids).toEqual(ids.map((_, i) => i));
    survivors(farm, before);
  });
});
