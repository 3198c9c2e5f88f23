// The redirect policy alone (docs/redirection.md), with a made-up farm.
import { describe, expect, it } from "vitest";
import { Balancer, hostPort } from "../c2s/balancer.js";
import type { Member } from "../lib/link/member.js";

const cfg = { name: "c2s-1", weight: 1, capacity: 1000, margin: 0.1, memorySeconds: 60, maxLag: 500 };
const member = (name: string, host: string, extra: Record<string, unknown> = {}): Member => ({
  name,
  role: "c2s",
  info: { host, port: 5222, tlsPort: 5223, weight: 1, capacity: 1000, started: 0, ...extra },
});
const load = (sessions: number, lag = 1) => ({ sessions, connections: sessions, lag });

function farm(extra2: Record<string, unknown> = {}) {
  const b = new Balancer(cfg);
  b.onMembers([member("c2s-1", "a.example"), member("c2s-2", "b.example", extra2), member("c2s-3", "2001:db8::3"), { name: "sm-1", role: "sm", info: {} }]);
  return b;
}

describe("Balancer", () => {
  it("sends nobody anywhere until the peers report their load", () => {
    expect(farm().redirectFor("10.0.0.1", "a@x", 50, false)).toBeNull();
  });

  it("redirects over the margin to the least loaded, with IPv6 literals bracketed", () => {
    const b = farm();
    expect(b.onLoads({ "c2s-2": load(40), "c2s-3": load(10) })).toEqual(["c2s-2", "c2s-3"]);
    expect(b.redirectFor("10.0.0.1", "a@x", 40, false)).toEqual({ name: "c2s-3", address: "[2001:db8::3]:5222" });
    expect(b.redirectFor("10.0.0.2", "b@x", 40, true)).toEqual({ name: "c2s-3", address: "[2001:db8::3]:5223" });
    // Within 10 % of the least loaded (11 vs 12 after the two sent): served here.
    expect(b.redirectFor("10.0.0.3", "c@x", 11, false)).toBeNull();
  });

  it("counts what it sent until the next report, so a burst spreads over every peer", () => {
    const b = farm();
    b.onLoads({ "c2s-2": load(0), "c2s-3": load(0) });
    const targets = Array.from({ length: 20 }, (_, i) => b.redirectFor(`10.0.0.${i}`, `u${i}@x`, 100, false)?.name);
    expect(targets.filter((t) => t === "c2s-2").length).toBe(10);
    expect(targets.filter((t) => t === "c2s-3").length).toBe(10);
  });

  it("weighs front ends: a weight of 2 takes twice the clients", () => {
    const b = new Balancer({ ...cfg, weight: 2 });
    b.onMembers([member("c2s-2", "b.example")]);
    b.onLoads({ "c2s-2": load(50) });
    expect(b.redirectFor("10.0.0.1", "a@x", 100, false)).toBeNull();
    expect(b.redirectFor("10.0.0.1", "a@x", 120, false)?.name).toBe("c2s-2");
  });

  it("at capacity, or draining, sends every new client away; never to a full, slow or draining peer", () => {
    const full = new Balancer({ ...cfg, capacity: 10 });
    full.onMembers([member("c2s-2", "b.example"), member("c2s-3", "c.example", { draining: true })]);
    full.onLoads({ "c2s-2": load(30), "c2s-3": load(0) });
    expect(full.redirectFor("10.0.0.1", "a@x", 10, false)?.name).toBe("c2s-2");
    full.onLoads({ "c2s-2": load(30, 900), "c2s-3": load(0) });
    expect(full.redirectFor("10.0.0.1", "b@x", 10, false)).toBeNull();
    const b = farm();
    b.onLoads({ "c2s-2": load(50), "c2s-3": load(50) });
    b.draining = true;
    expect(b.redirectFor("10.0.0.1", "a@x", 0, false)).not.toBeNull();
  });

  it("serves a redirected client that comes back, once, and a client a peer sent here", () => {
    const b = farm();
    b.onLoads({ "c2s-2": load(0), "c2s-3": load(0) });
    expect(b.redirectFor("10.0.0.1", "a@x", 100, false, 1000)).not.toBeNull();
    expect(b.returned("10.0.0.1", "a@x", 2000)).toBe(true);
    expect(b.returned("10.0.0.1", "a@x", 2000)).toBe(false);
    // Another account behind the same address is not mistaken for it.
    expect(b.returned("10.0.0.1", "other@x", 2000)).toBe(false);
    // The memory fades.
    b.redirectFor("10.0.0.9", "z@x", 100, false, 1000);
    b.sweep(1000 + 61_000);
    expect(b.returned("10.0.0.9", "z@x", 1000 + 61_000)).toBe(false);
    b.expect("10.0.0.5", "e@x");
    expect(b.wasSent("10.0.0.5", "e@x")).toBe(true);
    expect(b.wasSent("10.0.0.5", "e@x")).toBe(false);
  });

  it("moves no one to a peer whose ports are closed (full or draining): a full front end closes only while some peer can take", () => {
    const b = new Balancer(cfg);
    b.onMembers([member("c2s-2", "b.example", { full: true }), member("c2s-3", "c.example", { draining: true })]);
    b.onLoads({ "c2s-2": load(0), "c2s-3": load(0) });
    expect(b.peerCanTake()).toBe(false);
    expect(b.moveTarget(false)).toBeNull();
    b.onMembers([member("c2s-2", "b.example"), member("c2s-3", "c.example", { draining: true })]);
    expect(b.peerCanTake()).toBe(true);
    expect(b.moveTarget(true)).toEqual({ name: "c2s-2", address: "b.example:5223" });
  });

  it("formats host:port as RFC 6120 asks", () => {
    expect(hostPort("c2s.example", 5222)).toBe("c2s.example:5222");
    expect(hostPort("::1", 5223)).toBe("[::1]:5223");
  });
});
