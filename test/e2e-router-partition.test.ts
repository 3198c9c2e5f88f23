// No split brain (issue 15): a farm of two routers whose peer links run
// through proxies that the test pauses (a partition: nothing closes, nothing
// flows), an sm and a c2s. The lease in the database keeps exactly one router
// active through the partition and after it heals, and a router SIGSTOPped
// past its lease does not take the farm back when it wakes. Each router's
// state is asked of it over its admin link (protocol §1.7), never read from
// the log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminRequest } from "../lib/link/admin-link.js";
import { loadConfig, type Config } from "../lib/config.js";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

/** router.election and router.lease, the defaults (seconds). */
const ELECTION_S = 3;
const LEASE_S = 3;
/** The link's silence limit (lib/link/control.ts) and its 2 s ping period: a paused link is cut within 8 s. */
const CUT_MS = 8_000;

describe("a router pair partitioned, and a router paused past its lease", () => {
  let farm: Farm;
  let config: Config;
  let routers: Record<string, string>;
  let a: TestClient;
  let b: TestClient;

  /** Whether the router at `address` says it is active; null when it does not answer. */
  const activeAt = async (address: string): Promise<boolean | null> => {
    try {
      return (await adminRequest(config, { op: "status-request" }, "status", 2_000, [address])).active === true;
    } catch {
      return null;
    }
  };
  const states = async () => Object.fromEntries(await Promise.all(Object.entries(routers).map(async ([n, addr]) => [n, await activeAt(addr)] as const)));
  const until = async (what: () => Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await what())) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Asks both routers over and over for `ms`: exactly one active each time, `expected` (a router not answering counts as not active). */
  const exactlyOneActiveFor = async (ms: number, expected: string) => {
    const end = Date.now() + ms;
    let samples = 0;
    while (Date.now() < end) {
      const s = await states();
      expect(Object.keys(s).filter((n) => s[n] === true), JSON.stringify(s)).toEqual([expected]);
      samples++;
    }
    expect(samples).toBeGreaterThan(5);
  };
  const activeNow = async () => {
    const s = await states();
    return Object.keys(s).find((n) => s[n] === true)!;
  };
  /** The router that is active lists the sm and the c2s: they have linked to it. */
  const linkedToActive = async () => (await adminRequest(config, { op: "status-request" }, "status").catch(() => null))?.entries.length === 2;
  const exchange = async (id: string) => {
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id }, xml("body", {}, id)));
    expect((await b.next((s) => s.is("message") && s.attrs.id === id, 20_000)).getChildText("body")).toBe(id);
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, routerCount: 2, smCount: 1, peerProxies: true });
    await farm.start();
    config = loadConfig(farm.configFile, {});
    routers = { "router-1": `127.0.0.1:${farm.routerPort}`, "router-2": `127.0.0.1:${farm.routerPort + 1}` };
    await until(linkedToActive, 30_000);
    await farm.addUsers("u", 2, "pw", 64);
    a = await connectClient({ port: farm.c2sPorts[0]!.port, username: "u1", password: "pw", resource: "a" });
    b = await connectClient({ port: farm.c2sPorts[0]!.port, username: "u2", password: "pw", resource: "b" });
    await b.xmpp.send(xml("presence"));
    await exchange("before");
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("keeps exactly one router active while the peer link is cut, and after it heals", async () => {
    const active = await activeNow();
    for (const p of farm.peerProxies) p.pause();
    // Past the link's cut, the election and the lease: the passive router has asked for the lease, and been refused.
    await exactlyOneActiveFor(CUT_MS + (ELECTION_S + LEASE_S) * 1000 + 3_000, active);
    await exchange("partitioned");
    for (const p of farm.peerProxies) p.resume();
    await exactlyOneActiveFor(CUT_MS, active);
    await exchange("healed");
  }, 60_000);

  it("does not hand the farm back to an active router woken after its lease", async () => {
    const stopped = await activeNow();
    const other = stopped === "router-1" ? "router-2" : "router-1";
    const pid = farm.childPid(stopped);
    process.kill(pid, "SIGSTOP");
    try {
      await until(async () => (await activeAt(routers[other]!)) === true, 30_000);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Woken, it finds its lease lapsed and its peer silent: it steps down before it answers anything.
    await exactlyOneActiveFor((ELECTION_S + LEASE_S) * 1000 + 3_000, other);
    // `xfarm status` asks the router that is active now, whichever comes first among the addresses.
    await until(linkedToActive, 30_000);
    const r = await farm.cli("status", "--json");
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { router: string; active: boolean; entries: { name: string }[] };
    expect({ router: status.router, active: status.active }).toEqual({ router: other, active: true });
    expect(status.entries.map((e) => e.name).sort()).toEqual(["c2s-1", "sm-1"]);
    await exchange("after-wake");
  }, 90_000);
});
