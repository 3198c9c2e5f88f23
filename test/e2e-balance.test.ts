// Three front ends sharing load: clients all aimed at one are spread by
// <see-other-host/>; a drain moves everyone off one and closes its ports, an
// undrain opens them; a client that ignores redirects still gets in. Real
// processes, xmpp.js and slixmpp clients.
import { spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { portOpen } from "../sim/port-open.js";
import { HEADER, RawStream, secureStream } from "./harness/raw-stream.js";
import { connectClient, type TestClient } from "./harness/xmppjs.js";

const SLIX = fileURLToPath(new URL("./interop/slix_many.py", import.meta.url));
const JS_CLIENTS = 270;
const SLIX_CLIENTS = 30;
const CLIENTS = JS_CLIENTS + SLIX_CLIENTS;

describe("load sharing between front ends", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  let slix: ChildProcess | null = null;

  const sessions = async (): Promise<Record<string, { sessions: number; connections: number; draining: boolean }>> => {
    const entries = await farm.status();
    return Object.fromEntries(
      entries
        .filter((e) => e.role === "c2s")
        .map((e) => [e.name, { sessions: e.load?.sessions ?? 0, connections: e.load?.connections ?? 0, draining: !!e.info.draining }]),
    );
  };
  const pollSessions = async (ok: (s: Awaited<ReturnType<typeof sessions>>) => boolean, ms = 20_000) => {
    const end = Date.now() + ms;
    let last = await sessions();
    while (!ok(last)) {
      if (Date.now() > end) throw new Error(`not reached in time: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 500));
      last = await sessions();
    }
    return last;
  };

  beforeAll(async () => {
    // A small floor and margin: 300 clients aimed at one front end are a farm far off, as thousands
    // would be at the shipped 200, and the band the rule's hysteresis leaves (5 sessions) is small.
    // No lag limit: on a loaded 2-core box a front end's event loop can lag past the shipped 500 ms, and a
    // lagging peer takes no clients (the drain below once stalled at 55 sessions for 36 s on such a box,
    // its peers' other clients timing out in authentication too); that rule has its own tests
    // (test/balancer.test.ts).
    farm = await Farm.create({
      c2sCount: 3,
      c2s: { capacity: 200, public_host: "127.0.0.1", redirect_floor: 4, redirect_margin: 0.05, max_lag: 3_600_000 },
    });
    await farm.start();
    // Few PBKDF2 iterations: xmpp.js hashes in plain JS, and 300 logins in one test process must not stall it.
    await farm.addUsers("u", CLIENTS + 3, "pw", 64);
    // Balancing starts once c2s-1 hears the others' load.
    await farm.waitReporting("c2s-1", 2);
  }, 90_000);

  afterAll(async () => {
    slix?.stdin?.end();
    await Promise.all(clients.map((c) => c.stop()));
    await farm.stop();
    farm.cleanup();
  });

  it("spreads 300 clients aimed at one front end evenly over three", { timeout: 120_000 }, async () => {
    const port = farm.c2sPorts[0]!.port;
    let next = 1;
    const worker = async () => {
      while (next <= JS_CLIENTS) {
        const i = next++;
        clients.push(await connectClient({ port, username: `u${i}`, password: "pw" }));
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));

    slix = spawn("/usr/bin/python3", [SLIX, "--port", String(port), "--users", `${JS_CLIENTS + 1}:${CLIENTS}`, "--prefix", "u", "--password", "pw", "--ca", process.env.XFARM_TEST_CERT!]);
    let online = 0;
    readline.createInterface({ input: slix.stdout! }).on("line", (line) => {
      if (JSON.parse(line).event === "online") online++;
    });
    await expect.poll(() => online, { timeout: 30_000, interval: 200 }).toBe(SLIX_CLIENTS);

    const counts = await pollSessions((s) => Object.values(s).reduce((a, b) => a + b.sessions, 0) === CLIENTS);
    for (const name of ["c2s-1", "c2s-2", "c2s-3"]) {
      expect(counts[name]!.sessions).toBeGreaterThanOrEqual(90);
      expect(counts[name]!.sessions).toBeLessThanOrEqual(110);
    }
    // They got there by redirection, each at most once: a peer serves a client sent to it.
    const redirects = farm.lines.filter((l) => l.msg === "redirected");
    expect(redirects.filter((l) => l.proc !== "c2s-1" || l.level !== "info" || !/^127\.0\.0\.1:\d+$/.test(String(l.to)))).toEqual([]);
    expect(redirects.length).toBeGreaterThanOrEqual(180);
    expect(new Set(redirects.map((l) => l.user)).size).toBe(redirects.length);
    // slixmpp clients were among those redirected, and got in where they were sent.
    expect(redirects.some((l) => /^u(27[1-9]|28\d|29\d|300)@localhost$/.test(String(l.user)))).toBe(true);
  });

  it("drains a front end until it is empty, then undrains it", { timeout: 60_000 }, async () => {
    const r = await farm.cli("c2s", "drain", "c2s-1", "--rate", "100", "--wait", "--timeout", "40");
    expect(r.stdout).toMatch(/c2s-1 is draining/);
    expect(r.stdout).toMatch(/c2s-1 is drained: no connection left/);
    expect(r.code).toBe(0);
    // Every client moved (the XEP-0198 ones resumed on the others, which took each session over).
    const counts = await pollSessions((s) => s["c2s-1"]!.connections === 0 && s["c2s-2"]!.sessions + s["c2s-3"]!.sessions === CLIENTS, 30_000);
    expect((await sessions())["c2s-1"]!.draining).toBe(true);
    // Spread over the two that are left, within 10 % of even.
    for (const name of ["c2s-2", "c2s-3"]) {
      expect(counts[name]!.sessions).toBeGreaterThanOrEqual(135);
      expect(counts[name]!.sessions).toBeLessThanOrEqual(165);
    }
    expect((await farm.cli("status")).stdout).toMatch(/^c2s-1 +c2s +\S+ +\S+ +drained /m);
    // Its ports are closed: a client's connection attempt fails at once.
    await expect(RawStream.connect(farm.c2sPorts[0]!.port)).rejects.toThrow(/ECONNREFUSED/);
    const back = await farm.cli("c2s", "undrain", "c2s-1");
    expect(back.stdout).toMatch(/c2s-1 is no longer drained/);
    await pollSessions((s) => !s["c2s-1"]!.draining);
    await expect.poll(() => portOpen(farm.c2sPorts[0]!.port), { timeout: 10_000, interval: 200 }).toBe(true);
    const client = await connectClient({ port: farm.c2sPorts[0]!.port, username: `u${CLIENTS + 3}`, password: "pw" });
    clients.push(client);
  });

  /**
   * The more loaded of c2s-2 and c2s-3 (index into c2sPorts), which hold some 150 sessions each against the
   * undrained c2s-1's one: it sends new clients there. The other may not, when it holds a few less: clients flow
   * down from the most loaded front end only (docs/redirection.md), and the drain's split is not exact.
   */
  const busiest = async (): Promise<number> => {
    const s = await sessions();
    return s["c2s-3"]!.sessions > s["c2s-2"]!.sessions ? 2 : 1;
  };

  it("serves a client that ignores the redirect when it comes back", async () => {
    const port = farm.c2sPorts[await busiest()]!.port;
    const attempt = async () => {
      const s = await secureStream(port);
      const user = `u${CLIENTS + 1}`;
      s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString("base64")}</auth>`);
      await s.until(/<success/);
      s.send(HEADER());
      await s.until(/<bind xmlns|<\/see-other-host>/);
      return s;
    };
    const first = await attempt();
    const redirected = await first.untilClosed();
    expect(redirected).toMatch(/<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>127\.0\.0\.1:\d+<\/see-other-host>/);
    // A client like Smack or Gajim that does not follow comes straight back: it is served here.
    const second = await attempt();
    expect(second.received).toMatch(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    second.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await second.until(/<jid>u301@localhost\//);
    second.destroy();
  });

  it("checks a redirected PLAIN password once: the target takes the sender's voucher", async () => {
    const user = `u${CLIENTS + 2}`;
    const plainLogin = async (port: number) => {
      const s = await secureStream(port);
      s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString("base64")}</auth>`);
      await s.until(/<success/);
      s.send(HEADER());
      await s.until(/<bind xmlns|<\/see-other-host>/);
      return s;
    };
    const sender = await busiest();
    const redirected = await (await plainLogin(farm.c2sPorts[sender]!.port)).untilClosed();
    const port = Number(/<see-other-host [^>]*>127\.0\.0\.1:(\d+)</.exec(redirected)![1]);
    const target = await plainLogin(port);
    expect(target.received).toMatch(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    target.destroy();
    const proofs = () => farm.lines.filter((l) => l.msg === "authenticated" && l.user === `${user}@localhost`).map((l) => [l.proc, l.proof]);
    const name = farm.c2sPorts.findIndex((p) => p.port === port);
    // How each front end checked the password shows in its log only; log lines come over the
    // processes' stdout pipes, which may trail the client's reply.
    await expect.poll(proofs, { timeout: 5000 }).toEqual([
      [`c2s-${sender + 1}`, "pbkdf2"],
      [`c2s-${name + 1}`, "vouched"],
    ]);
  });
});

