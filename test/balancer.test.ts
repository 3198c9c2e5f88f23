// The redirect policy alone (docs/redirection.md), with a made-up farm.
import { describe, expect, it } from "vitest";
import { Balancer, hostPort } from "../c2s/balancer.js";
import type { Member } from "../lib/link/member.js";
import { prng } from "../sim/arrivals.js";

// A small floor, so that a farm of a few dozen sessions shows the rule; the shipped one is 200.
const cfg = { name: "c2s-1", weight: 1, capacity: 1000, margin: 0.1, floor: 10, memorySeconds: 60, maxLag: 500 };
const shipped = { ...cfg, capacity: 100_000, floor: 200 };
const member = (name: string, host: string, extra: Record<string, unknown> = {}): Member => ({
  name,
  role: "c2s",
  info: { host, port: 5222, tlsPort: 5223, weight: 1, capacity: 100_000, started: 0, ...extra },
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

  it("redirects over the floor to the least loaded, with IPv6 literals bracketed", () => {
    const b = farm();
    expect(b.onLoads({ "c2s-2": load(40), "c2s-3": load(10) })).toEqual(["c2s-2", "c2s-3"]);
    expect(b.redirectFor("10.0.0.1", "a@x", 40, false)).toEqual({ name: "c2s-3", address: "[2001:db8::3]:5222" });
    expect(b.redirectFor("10.0.0.2", "b@x", 40, true)).toEqual({ name: "c2s-3", address: "[2001:db8::3]:5223" });
  });

  it("never redirects one session against none, nor within the floor or within 10 %", () => {
    const b = new Balancer(shipped);
    b.onMembers([member("c2s-2", "b.example")]);
    b.onLoads({ "c2s-2": load(0) });
    expect(b.redirectFor("10.0.0.1", "a@x", 1, false)).toBeNull();
    // 200 over the peer: within the floor.
    expect(b.redirectFor("10.0.0.1", "a@x", 200, false)).toBeNull();
    expect(b.redirectFor("10.0.0.1", "a@x", 201, false)?.name).toBe("c2s-2");
    // 400 over a peer of 4,600: over the floor, within 10 % of it.
    const big = new Balancer(shipped);
    big.onMembers([member("c2s-2", "b.example")]);
    big.onLoads({ "c2s-2": load(4600) });
    expect(big.redirectFor("10.0.0.1", "a@x", 5000, false)).toBeNull();
    expect(big.redirectFor("10.0.0.1", "a@x", 5061, false)?.name).toBe("c2s-2");
  });

  it("lets clients flow down from the most loaded front end only: one below it never sends a client on again", () => {
    // c2s-2 sends clients down here; their `expect` may trail them, and a second move would cost a second reconnect.
    const b = farm();
    b.onLoads({ "c2s-2": load(100), "c2s-3": load(10) });
    expect(b.redirectFor("10.0.0.1", "a@x", 60, false)).toBeNull();
    // Once the top one is down to this front end's level (within half the threshold), this one redirects too.
    b.onLoads({ "c2s-2": load(64), "c2s-3": load(10) });
    expect(b.redirectFor("10.0.0.1", "a@x", 60, false)?.name).toBe("c2s-3");
  });

  it("never redirects in a farm of two whose clients choose a front end at random, as SRV records spread them", () => {
    // 2,000 users logging in and out at random on two front ends that report every 20 events.
    const { redirects, logins } = simulate({ start: [0, 0], events: 20_000, online: 2000, toFirst: 0.5, seed: 7 });
    expect(logins).toBeGreaterThan(5000);
    expect(redirects).toEqual([0, 0]);
  });

  it("far off, redirects until the gap is down to half the threshold, then holds it between the two, never the other way", () => {
    // "A box just added": c2s-1 holds 1,000, c2s-2 none, and every new client comes to c2s-1, 20 a second.
    const r = simulate({ start: [1000, 0], events: 3000, online: Infinity, toFirst: 1, seed: 1, perSecond: 20 });
    expect(r.redirects[1]).toBe(0);
    // The first run ends near 100 over (half of 200), what was sent in the last second counted twice at worst.
    expect(r.firstRun).toBeGreaterThan(850);
    expect(r.firstRun).toBeLessThanOrEqual(900);
    // From then on the gap saws between the two marks: up to 201 as c2s-1 serves, down to 100 as it redirects.
    const after = r.gaps.slice(r.firstRun);
    expect(Math.min(...after)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...after)).toBe(201);
    // Then clients come and go, spread at random: the churn takes the rest of the gap away, c2s-2
    // never sends one back, and c2s-1 redirects only while the gap wanders over the threshold.
    const calm = simulate({ start: r.sessions, events: 20_000, online: r.sessions[0] + r.sessions[1], toFirst: 0.5, seed: 3 });
    expect(calm.redirects[1]).toBe(0);
    expect(calm.redirects[0]).toBeLessThan(calm.logins / 100);
    expect(Math.max(...calm.gaps.slice(-1000).map(Math.abs))).toBeLessThan(100);
  });

  it("under a burst of 100 logins a second at one front end, overshoots the threshold by two seconds' worth at most", () => {
    // Clients sent in the 1.5 s before a report that changed count twice until the next change,
    // or 3.5 s at most: c2s-1 stops early and starts late, never sends past the low mark.
    const r = simulate({ start: [1000, 0], events: 6000, online: Infinity, toFirst: 1, seed: 1, perSecond: 100 });
    expect(r.redirects[1]).toBe(0);
    const after = r.gaps.slice(r.firstRun);
    expect(Math.min(...after)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...after)).toBeLessThanOrEqual(201 + 200);
  });

  it("has hysteresis: starts over the threshold, stops only at half of it", () => {
    const b = new Balancer(shipped);
    b.onMembers([member("c2s-2", "b.example")]);
    b.onLoads({ "c2s-2": load(1000) });
    // Ten seconds apart: what was sent has left the count, as if the peer's reports showed it gone again.
    const at = (sessions: number, i: number) => b.redirectFor("10.0.0.1", "a@x", sessions, false, i * 10_000) !== null;
    // Threshold max(200, 10 % of 1,000) = 200 over the peer, low mark 100.
    expect([1150, 1200, 1201, 1150, 1101, 1100, 1150, 1200, 1201].map(at)).toEqual([false, false, true, true, true, false, false, false, true]);
  });

  it("never sends a client past this front end's own share (the target would send it back)", () => {
    // Weight 2 with 9 sessions (4.5 each) against a peer of weight 1 with 4: one more would make it 5.
    const b = new Balancer({ ...cfg, weight: 2, floor: 0, margin: 0 });
    b.onMembers([member("c2s-2", "b.example")]);
    b.onLoads({ "c2s-2": load(4) });
    expect(b.redirectFor("10.0.0.1", "a@x", 9, false)).toBeNull();
    expect(b.redirectFor("10.0.0.1", "a@x", 10, false)?.name).toBe("c2s-2");
  });

  it("sends new clients on while its own event loop is slow, and stops when it recovers", () => {
    const b = farm();
    b.onLoads({ "c2s-2": load(50), "c2s-3": load(50) });
    expect(b.redirectFor("10.0.0.1", "a@x", 50, false)).toBeNull();
    b.onLoads({ "c2s-1": load(50, 900), "c2s-2": load(50), "c2s-3": load(50) });
    expect(b.redirectFor("10.0.0.2", "b@x", 50, false)).not.toBeNull();
    // Only to a peer that can take them.
    b.onLoads({ "c2s-1": load(50, 900), "c2s-2": load(50, 900), "c2s-3": load(50, 900) });
    expect(b.redirectFor("10.0.0.3", "c@x", 50, false)).toBeNull();
    b.onLoads({ "c2s-1": load(50, 20), "c2s-2": load(50), "c2s-3": load(50) });
    expect(b.redirectFor("10.0.0.4", "d@x", 50, false)).toBeNull();
  });

  it("counts what it sent until a report shows it, so a burst spreads over every peer", () => {
    const b = farm();
    b.onLoads({ "c2s-2": load(0), "c2s-3": load(0) }, 0);
    const targets = Array.from({ length: 20 }, (_, i) => b.redirectFor(`10.0.0.${i}`, `u${i}@x`, 100, false, 0)?.name);
    expect(targets.filter((t) => t === "c2s-2").length).toBe(10);
    expect(targets.filter((t) => t === "c2s-3").length).toBe(10);
    // A report that changed a second later may have been taken before the burst: it still counts
    // (14 each, 5 under 19: within half the threshold, so the run of redirects ends)...
    b.onLoads({ "c2s-2": load(4), "c2s-3": load(4) }, 1000);
    expect(b.redirectFor("10.0.0.99", "z@x", 19, false, 1000)).toBeNull();
    // ...until a report that changed 1.5 s after it (c2s-2: 10, not 20), or for 3.5 s (c2s-3: 4, not 14).
    b.onLoads({ "c2s-2": load(10), "c2s-3": load(4) }, 1600);
    expect(b.redirectFor("10.0.0.98", "y@x", 24, false, 1600)?.name).toBe("c2s-2");
    expect(b.redirectFor("10.0.0.97", "x@x", 24, false, 3600)?.name).toBe("c2s-3");
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

  it("sends no one to a peer that knows no sm yet (a restarted front end whose ports are still closed), and does once it does", () => {
    const b = new Balancer(cfg);
    b.onMembers([member("c2s-2", "b.example", { noSm: true })]);
    b.onLoads({ "c2s-2": load(0) });
    expect(b.redirectFor("10.0.0.1", "a@x", 500, false)).toBeNull();
    expect(b.peerCanTake()).toBe(false);
    expect(b.moveTarget(false)).toBeNull();
    b.onMembers([member("c2s-2", "b.example")]);
    expect(b.redirectFor("10.0.0.1", "a@x", 500, false)?.name).toBe("c2s-2");
  });

  it("counts a client it sent until the peer's report has heard of it, however long the client takes to log in there", () => {
    const b = new Balancer(cfg);
    b.onMembers([member("c2s-2", "b.example")]);
    b.onLoads({ "c2s-2": { ...load(0), expecting: 0, heard: {} } });
    // 30 here, none there: clients go until the estimate (reported load plus clients sent since) is within half the threshold.
    let sent = 0;
    while (b.redirectFor(`10.0.1.${sent}`, `u${sent}@x`, 30, false, 0)) sent++;
    expect(sent).toBe(25);
    // A report that heard of 10 of them, 4 logged in and 6 on their way: the 15 it has not heard of still count, 25 in all.
    b.onLoads({ "c2s-2": { ...load(4), expecting: 6, heard: { "c2s-1": 10 } } }, 5_000);
    expect(b.redirectFor("10.0.2.1", "v@x", 30, false, 1_000)).toBeNull();
    expect(b.redirectFor("10.0.2.2", "w@x", 36, false, 1_000)?.name).toBe("c2s-2");
    // A peer of an earlier version (no `heard`) is estimated as before: reported sessions plus the clients sent lately.
    const old = new Balancer(cfg);
    old.onMembers([member("c2s-2", "b.example")]);
    old.onLoads({ "c2s-2": load(0) });
    expect(old.redirectFor("10.0.3.1", "x@x", 40, false)?.name).toBe("c2s-2");
  });

  it("reports the clients peers sent it that have not logged in yet, and the notices it heard from each", () => {
    const b = farm();
    b.expect("10.0.0.5", "e@x", "c2s-2");
    b.expect("10.0.0.6", "f@x", "c2s-2");
    b.expect("10.0.0.7", "g@x", "c2s-3");
    expect(b.expecting).toBe(3);
    expect(b.wasSent("10.0.0.5", "e@x")).toBe(true);
    expect(b.expecting).toBe(2);
    expect(b.heard()).toEqual({ "c2s-2": 2, "c2s-3": 1 });
  });

  it("formats host:port as RFC 6120 asks", () => {
    expect(hostPort("c2s.example", 5222)).toBe("c2s.example:5222");
    expect(hostPort("::1", 5223)).toBe("[::1]:5223");
  });
});

/**
 * Two front ends with the shipped rule, each with its own Balancer.
 * `perSecond` events a second (100 by default), each a login aimed at c2s-1 with probability `toFirst` (else
 * c2s-2), or, with `online` sessions already, a logout of a random one. Each
 * front end reports its sessions every 2 s (c2s-1 on the second, c2s-2 in
 * between), and the router shares the table every second, as on a real farm.
 * Redirected clients follow and are served at the target, as the "expect"
 * makes it. Returns the redirects each front end made, the logins, the
 * sessions at the end, the gap after each login, and how many redirects
 * c2s-1 made before it first served a login.
 */
function simulate(o: { start: [number, number]; events: number; online: number; toFirst: number; seed: number; perSecond?: number }) {
  const step = 1000 / (o.perSecond ?? 100);
  const random = prng(o.seed);
  const names = ["c2s-1", "c2s-2"];
  const balancers = names.map((name, i) => {
    const b = new Balancer({ ...shipped, name });
    b.onMembers([member(names[1 - i]!, `${name}.example`)]);
    return b;
  });
  const sessions: [number, number] = [...o.start];
  const reported = [...o.start];
  const redirects = [0, 0];
  const gaps: number[] = [];
  let logins = 0;
  let firstRun = -1;
  const share = () => {
    const table = { "c2s-1": load(reported[0]!), "c2s-2": load(reported[1]!) };
    for (const b of balancers) b.onLoads(table, now);
  };
  let now = 0;
  share();
  for (let e = 0; e < o.events; e++) {
    const before = now;
    now = e * step;
    // Reports at 0, 2, 4 s… (c2s-1) and 1, 3, 5 s… (c2s-2); the router shares at 0.5, 1.5, 2.5 s…
    const crossed = (t: number, period: number) => Math.floor((now - t) / period) > Math.floor((before - t) / period) || e === 0;
    if (crossed(0, 2000)) reported[0] = sessions[0];
    if (crossed(1000, 2000)) reported[1] = sessions[1];
    if (crossed(500, 1000)) share();
    const total = sessions[0] + sessions[1];
    if (total >= o.online) {
      sessions[random() * total < sessions[0] ? 0 : 1]--;
      continue;
    }
    logins++;
    const at = random() < o.toFirst ? 0 : 1;
    const target = balancers[at]!.redirectFor(`10.0.${e >> 8}.${e & 255}`, `u${e}@x`, sessions[at]!, false, now);
    if (target) redirects[at]!++;
    else if (firstRun < 0) firstRun = redirects[0]!;
    sessions[target ? 1 - at : at]!++;
    gaps.push(sessions[0] - sessions[1]);
  }
  return { redirects, logins, sessions, gaps, firstRun };
}
