// The router keeps the set of drained front ends (protocol §1.7, §1.9):
// real Routers, a real router pair and real LinkClients over loopback TCP.
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ControlMessage } from "../lib/link/control.js";
import { LinkClient } from "../lib/link/link-client.js";
import { RouterPair } from "../router/router-pair.js";
import { Router } from "../router/router.js";
import { openStore } from "../xdb-sql/open-store.js";

const SECRETS = new Map([
  ["c2s-1", "s3cret-c2s"],
  ["admin", "s3cret-admin"],
  ["router-1", "s3cret-r1"],
  ["router-2", "s3cret-r2"],
]);
const C2S_INFO = { host: "localhost", port: 5222, tlsPort: 5223, weight: 1, capacity: 100, started: 1 };
const log = pino({ level: "silent" });

const until = (cond: () => boolean, timeout = 5000) => vi.waitUntil(cond, { timeout, interval: 20 });

describe("drained front ends, kept by the router", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function router(name = "router-1") {
    const r = new Router({ name, host: "127.0.0.1", port: 0, secretOf: (n) => SECRETS.get(n), log, domains: ["localhost"] });
    const { port } = await r.listen();
    cleanup.push(() => r.close());
    return { r, port };
  }

  /** A front end's link; what the router orders it is kept in `orders`. */
  function frontEnd(ports: number[], info: Record<string, unknown> = C2S_INFO) {
    const c = new LinkClient({ name: "c2s-1", role: "c2s", secret: SECRETS.get("c2s-1")!, routers: ports.map((p) => `127.0.0.1:${p}`), info, log });
    const orders: ControlMessage[] = [];
    c.on("control", (m) => orders.push(m));
    c.start();
    cleanup.push(() => c.stop());
    return { c, orders };
  }

  /** One admin request, as `xfarm c2s drain` sends it; resolves with the router's result. */
  async function admin(port: number, request: ControlMessage): Promise<{ ok: boolean; error?: string }> {
    const c = new LinkClient({ name: "admin", role: "admin", secret: SECRETS.get("admin")!, routers: [`127.0.0.1:${port}`], info: {}, log });
    try {
      return await new Promise((resolve) => {
        c.once("up", () => c.sendControl(request));
        c.on("control", (m) => m.op === "result" && resolve(m));
        c.start();
      });
    } finally {
      c.stop();
    }
  }

  it("drains a linked front end, refuses unknown names, drains it again when it re-links, and undrains it", async () => {
    const { r, port } = await router();
    expect(await admin(port, { op: "drain", name: "c2s-9", rate: 5 })).toEqual({ op: "result", ok: false, error: 'no front end named "c2s-9" is linked' });
    expect(await admin(port, { op: "undrain", name: "c2s-1" })).toMatchObject({ ok: false, error: 'front end "c2s-1" is not drained' });

    const first = frontEnd([port]);
    await until(() => first.c.connected);
    expect(await admin(port, { op: "drain", name: "c2s-1", rate: 7 })).toMatchObject({ ok: true });
    await until(() => first.orders.some((m) => m.op === "drain"));
    expect(first.orders).toEqual([{ op: "drain", name: "c2s-1", rate: 7 }]);
    expect([...r.drained]).toEqual([["c2s-1", 7]]);

    // Restarted mid-drain: a new process that does not know it drains is told so as it links.
    first.c.stop();
    await until(() => !r.members.some((m) => m.name === "c2s-1"));
    const restarted = frontEnd([port]);
    await until(() => restarted.orders.length > 0);
    expect(restarted.orders).toEqual([{ op: "drain", name: "c2s-1", rate: 7 }]);
    // A drained name is known while it is away too.
    restarted.c.stop();
    await until(() => !r.members.some((m) => m.name === "c2s-1"));
    expect(await admin(port, { op: "drain", name: "c2s-1", rate: 9 })).toMatchObject({ ok: true });

    const back = frontEnd([port], { ...C2S_INFO, draining: true, drainRate: 9 });
    await until(() => back.orders.length > 0);
    expect(await admin(port, { op: "undrain", name: "c2s-1" })).toMatchObject({ ok: true });
    await until(() => back.orders.length > 1);
    expect(back.orders).toEqual([
      { op: "drain", name: "c2s-1", rate: 9 },
      { op: "undrain", name: "c2s-1" },
    ]);
    expect(r.drained.size).toBe(0);
  });

  it("adopts a front end that links draining after a router restart, and undrains one that was away", async () => {
    const { r, port } = await router();
    const draining = frontEnd([port], { ...C2S_INFO, draining: true, drainRate: 3 });
    await until(() => r.drained.has("c2s-1"));
    expect(r.drained.get("c2s-1")).toBe(3);
    expect(draining.orders).toEqual([]);

    // Undrained while its link is down: it is told so when it comes back still draining.
    draining.c.stop();
    await until(() => !r.members.some((m) => m.name === "c2s-1"));
    expect(await admin(port, { op: "undrain", name: "c2s-1" })).toMatchObject({ ok: true });
    const back = frontEnd([port], { ...C2S_INFO, draining: true, drainRate: 3 });
    await until(() => back.orders.length > 0);
    expect(back.orders).toEqual([{ op: "undrain", name: "c2s-1" }]);
    expect(r.drained.size).toBe(0);
  });

  it("shares the set with the pair peer, so the router that takes over keeps it", async () => {
    const a = await router("router-1");
    const b = await router("router-2");
    // The lease's database: one in-memory SQLite connection serves both routers of this process.
    const store = await openStore("sqlite::memory:");
    cleanup.push(() => store.close());
    const pair = (self: { r: Router }, name: string, peer: number) => {
      const p = new RouterPair({ router: self.r, name, peer: `127.0.0.1:${peer}`, secret: SECRETS.get(name)!, electionMs: 300, leaseMs: 300, store, log });
      p.start();
      cleanup.push(() => p.stop());
      return p;
    };
    const pairs = new Map([
      [a.r, pair(a, "router-1", b.port)],
      [b.r, pair(b, "router-2", a.port)],
    ]);
    await until(() => a.r.active !== b.r.active);
    const [active, passive] = a.r.active ? [a, b] : [b, a];

    const fe = frontEnd([active.port, passive.port]);
    await until(() => fe.c.connected);
    expect(await admin(passive.port, { op: "drain", name: "c2s-1", rate: 4 })).toMatchObject({ ok: false, error: "this router is passive; ask the active one" });
    expect(await admin(active.port, { op: "drain", name: "c2s-1", rate: 4 })).toMatchObject({ ok: true });
    await until(() => passive.r.drained.get("c2s-1") === 4);

    // The active router goes; the front end, which announces nothing of its drain here, re-links to the other.
    await pairs.get(active.r)!.stop();
    await active.r.close();
    await until(() => passive.r.active, 5000);
    await until(() => fe.orders.length > 1, 10_000);
    expect(fe.orders).toEqual([
      { op: "drain", name: "c2s-1", rate: 4 },
      { op: "drain", name: "c2s-1", rate: 4 },
    ]);
  });
});
