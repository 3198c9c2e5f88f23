// The link protocol (docs/protocol.md §1) between a real Router and real
// LinkClients over loopback TCP.
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_MAX_FRAME, routeLength } from "../lib/link/frames.js";
import { LinkClient } from "../lib/link/link-client.js";
import { SM_ADDRESS, rendezvousOwner, type Member } from "../lib/link/member.js";
import { Router } from "../router/router.js";

function capturingLogger(proc: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "debug", base: { proc } }, sink), lines };
}

const SECRETS = new Map([
  ["c2s-1", "s3cret-c2s"],
  ["sm-1", "s3cret-sm"],
  ["sm-2", "s3cret-sm2"],
]);
/** The `info` each role must give (protocol §1.5). */
const INFO = {
  c2s: { host: "localhost", port: 5222, tlsPort: 5223, weight: 1, capacity: 100, started: 1 },
  sm: { started: 1 },
};

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("component links", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function router(port = 0) {
    const cap = capturingLogger("router");
    const r = new Router({ name: "router-1", host: "127.0.0.1", port, secretOf: (n) => SECRETS.get(n), log: cap.log, domains: ["localhost"] });
    const addr = await r.listen();
    cleanup.push(() => r.close());
    return { r, port: addr.port, lines: cap.lines };
  }

  function client(name: string, role: "c2s" | "sm", port: number, secret = SECRETS.get(name)!) {
    const cap = capturingLogger(name);
    const c = new LinkClient({ name, role, secret, routers: [`127.0.0.1:${port}`], info: INFO[role], log: cap.log });
    c.start();
    cleanup.push(() => c.stop());
    return { c, lines: cap.lines };
  }

  it("authenticates both ways, shares members, and routes by name and by user key", async () => {
    const { port, r } = await router();
    const c2s = client("c2s-1", "c2s", port);
    const sm = client("sm-1", "sm", port);
    await until(() => c2s.c.connected && sm.c.connected && c2s.c.members.length === 2);
    expect(r.members.map((m: Member) => m.name).sort()).toEqual(["c2s-1", "sm-1"]);
    expect(c2s.c.smOwnerOf("alice@localhost")).toBe("sm-1");

    const got: [string, string, string][] = [];
    sm.c.on("route", (from, key, payload) => got.push([from, key, payload.toString()]));
    c2s.c.send(SM_ADDRESS, "alice@localhost", Buffer.from("to the owner"));
    c2s.c.send("sm-1", "", Buffer.from("by name"));
    await until(() => got.length === 2);
    expect(got).toEqual([
      ["c2s-1", "alice@localhost", "to the owner"],
      ["c2s-1", "", "by name"],
    ]);
  });

  it("refuses a wrong secret, with a clear log line on both sides", async () => {
    const { port, lines } = await router();
    const bad = client("c2s-1", "c2s", port, "not-the-secret");
    await until(() => bad.lines.some((l) => l.msg === "router refused this component's link"));
    expect(bad.lines.find((l) => l.msg === "router refused this component's link")).toMatchObject({ reason: "authentication failed" });
    expect(lines.find((l) => l.msg === "refused a link")).toMatchObject({ component: "c2s-1", role: "c2s", reason: "wrong secret", unlogged: 0 });
    expect(bad.c.connected).toBe(false);
  });

  it("refuses an unknown name in the same words, and logs a flood of refusals as one line", async () => {
    const { port, lines } = await router();
    const names = ["stranger", "constructor", "__proto__", "x".repeat(300)];
    const clients = names.map((name) => client(name, "sm", port, "whatever"));
    await until(() => clients.every((c) => c.lines.some((l) => l.msg === "router refused this component's link")));
    for (const c of clients) expect(c.lines.find((l) => l.msg === "router refused this component's link")).toMatchObject({ reason: "authentication failed" });
    // One line for the first refusal; the ones after it within the interval are counted, not written.
    const refused = clients.reduce((n, c) => n + c.lines.filter((l) => l.msg === "router refused this component's link").length, 0);
    const logged = lines.filter((l) => l.msg === "refused a link");
    expect(logged.length).toBeLessThan(refused);
    expect(logged[0]).toMatchObject({ reason: "no secret is configured for this name", unlogged: 0 });
    // A long name is logged cut short.
    for (const l of logged) expect(String(l.component).length).toBeLessThan(100);
  });

  it("ends the link of a process that sends a malformed message, and keeps it from the others", async () => {
    const { port, r, lines } = await router();
    const c2s = client("c2s-1", "c2s", port);
    const sm = client("sm-1", "sm", port);
    await until(() => c2s.c.connected && sm.c.connected && sm.c.members.length === 2);
    // An info every process would read (the sm reads info.started) that is not an object.
    c2s.c.sendControl({ op: "info", info: null as never });
    await until(() => lines.some((l) => l.msg === "link protocol error; closing" && l.component === "c2s-1"));
    expect(lines.find((l) => l.msg === "link protocol error; closing")).toMatchObject({ err: 'CONTROL "info" has the wrong shape' });
    // It re-links with its own good info; the sm never saw the bad one and kept its link.
    await until(() => c2s.c.connected && r.members.some((m) => m.name === "c2s-1"));
    expect(sm.lines.some((l) => l.msg === "link protocol error; closing")).toBe(false);
    expect(sm.c.members.find((m) => m.name === "c2s-1")?.info).toEqual(INFO.c2s);
  });

  it("never sends a frame over link.max_frame: send says so, and the link carries on", async () => {
    const { port, lines } = await router();
    const c2s = client("c2s-1", "c2s", port);
    const sm = client("sm-1", "sm", port);
    await until(() => c2s.c.connected && sm.c.connected);
    const got: number[] = [];
    sm.c.on("route", (_f, _k, payload) => got.push(payload.length));
    const largest = DEFAULT_MAX_FRAME - routeLength("sm-1", "c2s-1", "alice@localhost", 0);
    expect(c2s.c.send("sm-1", "alice@localhost", Buffer.alloc(largest + 1, 0x61))).toBe(false);
    expect(c2s.lines.find((l) => l.msg === "frame over link.max_frame not sent")).toMatchObject({
      to: "sm-1",
      length: DEFAULT_MAX_FRAME + 1,
      max: DEFAULT_MAX_FRAME,
    });
    // The largest frame allowed goes through, and the link is the same one.
    expect(c2s.c.send("sm-1", "alice@localhost", Buffer.alloc(largest, 0x62))).toBe(true);
    expect(c2s.c.send("sm-1", "alice@localhost", Buffer.from("after"))).toBe(true);
    await until(() => got.length === 2);
    expect(got).toEqual([largest, 5]);
    expect(lines.filter((l) => l.msg === "component left" || l.msg === "link protocol error; closing")).toEqual([]);
  });

  it("hands back what it cannot deliver", async () => {
    const { port } = await router();
    const c2s = client("c2s-1", "c2s", port);
    await until(() => c2s.c.connected);
    const back: [string, string, string][] = [];
    c2s.c.on("undeliverable", (to, key, payload) => back.push([to, key, payload.toString()]));
    c2s.c.send(SM_ADDRESS, "bob@localhost", Buffer.from("no sm yet"));
    c2s.c.send("c2s-9", "", Buffer.from("nobody"));
    await until(() => back.length === 2);
    expect(back).toEqual([
      [SM_ADDRESS, "bob@localhost", "no sm yet"],
      ["c2s-9", "", "nobody"],
    ]);
  });

  it("re-links by itself after the router restarts, and flushes what was queued", async () => {
    const first = await router();
    const c2s = client("c2s-1", "c2s", first.port);
    const sm = client("sm-1", "sm", first.port);
    await until(() => c2s.c.connected && sm.c.connected);
    await first.r.close();
    await until(() => !c2s.c.connected && !sm.c.connected);
    const got: string[] = [];
    const back: string[] = [];
    sm.c.on("route", (_f, _k, p) => got.push(p.toString()));
    c2s.c.on("undeliverable", (_t, _k, p) => back.push(p.toString()));
    c2s.c.send("sm-1", "", Buffer.from("sent while down"));
    await router(first.port);
    await until(() => c2s.c.connected && sm.c.connected && c2s.c.members.length === 2, 10_000);
    // Queued while down: delivered if sm-1 re-linked first, else handed back — never lost.
    await until(() => got.length + back.length === 1);
    c2s.c.send("sm-1", "", Buffer.from("after"));
    await until(() => got.includes("after"));
  });

  it("spreads users over sms by rendezvous hashing, moving few when one joins", () => {
    const users = Array.from({ length: 2000 }, (_, i) => `user${i}@localhost`);
    const two = users.map((u) => rendezvousOwner(["sm-1", "sm-2"], u));
    const three = users.map((u) => rendezvousOwner(["sm-1", "sm-2", "sm-3"], u));
    const onFirst = two.filter((o) => o === "sm-1").length;
    expect(onFirst).toBeGreaterThan(850);
    expect(onFirst).toBeLessThan(1150);
    // Only users that sm-3 wins move; nobody moves between sm-1 and sm-2.
    users.forEach((_, i) => {
      if (three[i] !== "sm-3") expect(three[i]).toBe(two[i]);
    });
    const moved = three.filter((o) => o === "sm-3").length;
    expect(moved).toBeGreaterThan(500);
    expect(moved).toBeLessThan(850);
  });
});
