// `xfarm sim` against a real farm of two front ends: accounts made in bulk
// by `xfarm sim --create-accounts`, then a short chat scenario through the
// compiled CLI (forked workers, STARTTLS + PLAIN, and direct TLS +
// SCRAM-SHA-256). Every user aims at the first front end, which sends part
// of them to the second with <see-other-host/>: the simulator follows and
// counts those redirects. Pass/fail rests on counts, never on timings.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../sim/local-farm.js";
import type { SimResults } from "../sim/results.js";
import { Farm } from "./harness/farm.js";
import { expectCleanRun, runCli } from "./sim-expect.js";

const USERS = 200;
const MESSAGES_EACH = 5;

describe("xfarm sim against a farm of two front ends", () => {
  let farm: Farm;
  const outDir = () => farm.dir;

  beforeAll(async () => {
    // A small floor, so that 200 users aimed at one front end are far off and some are redirected.
    farm = await Farm.create({ c2sCount: 2, logLevel: "info", c2s: { public_host: "127.0.0.1", auth_timeout: 30, redirect_floor: 20 } });
    await farm.start();
    // Balancing starts once c2s-1 hears the other's load.
    await farm.waitReporting("c2s-1", 1);
  }, 60_000);

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("creates the accounts in bulk in the farm's store", async () => {
    const r = await farm.cli("sim", "--create-accounts", "--users", String(USERS), "--iterations", "1024");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${USERS} accounts created (0 existed): user1 … user${USERS}@localhost`);
    const again = await farm.cli("sim", "--create-accounts", "--users", String(USERS), "--iterations", "1024");
    expect(again.stdout).toContain(`0 accounts created (${USERS} existed)`);
    const list = await farm.cli("user", "list", "localhost");
    expect(list.stdout.split("\n").filter((l) => /^user\d+@localhost$/.test(l))).toHaveLength(USERS);
  });

  const variants = [
    // With XEP-0198 on (the farm asks for an ack every 5 stanzas) and whitespace keepalives.
    { name: "STARTTLS, PLAIN and stream management", security: "starttls", mechanism: "PLAIN", port: (f: Farm, i: number) => f.c2sPorts[i]!.port, extra: ["--sm", "--keepalive", "1"] },
    { name: "direct TLS and SCRAM-SHA-256", security: "direct", mechanism: "SCRAM-SHA-256", port: (f: Farm, i: number) => f.c2sPorts[i]!.tlsPort, extra: [] },
  ];

  for (const v of variants) {
    it(`runs a chat scenario with ${v.name}: every user logs in, every message arrives`, { timeout: 120_000 }, async () => {
      const out = path.join(outDir(), `sim-${v.security}.json`);
      const r = await runCli([
        "sim",
        "--port", String(v.port(farm, 0)),
        "--security", v.security,
        "--mechanism", v.mechanism,
        "--ca", process.env.XFARM_TEST_CERT!,
        "--users", String(USERS),
        "--rate", "100",
        "--chat-rate", "5",
        "--chat-count", String(MESSAGES_EACH),
        "--workers", "2",
        "--sources", "127.0.0.2-127.0.0.3",
        "--duration", "90",
        "--login-timeout", "60",
        "--progress", "lines",
        "--out", out,
        ...v.extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("xfarm sim: 127.0.0.1:");
      const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
      expectCleanRun(res, USERS, USERS * MESSAGES_EACH);
      expect(res.sim.workers).toHaveLength(2);
      expect(res.sim.workers.map((w) => w.users)).toEqual([USERS / 2, USERS / 2]);
      // Each TLS connection: one handshake, verified against the test CA.
      expect(res.totals.tls).toBe(res.totals.connections);
      // Redirects: to the second front end (on the port of the same kind), one connection more each.
      // A few may bounce back to the first when its "expect" trails the client through a busy
      // router; the first then serves them as clients that came back, so none goes round twice.
      const t = res.totals;
      expect(t.connections).toBe(USERS + t.redirects);
      const first = `127.0.0.1:${v.port(farm, 0)}`;
      const second = `127.0.0.1:${v.port(farm, 1)}`;
      expect(Object.keys(t.redirects_by_target).every((k) => k === first || k === second)).toBe(true);
      expect(t.redirects_by_target[first] ?? 0).toBeLessThanOrEqual(Math.ceil(t.redirects / 10));
      // Both front ends served users: the farm redirected part of those aimed at the first.
      expect(t.redirects).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/\[\s*\d+s\] arrived \d+\/200/);
      if (v.extra.includes("--sm")) {
        expect(t.sm_enabled).toBe(USERS);
        // 1,000 messages and more stanzas in all: the farm asked for acks, and got them.
        expect(t.sm_acks_sent).toBeGreaterThan(0);
      } else expect(t.sm_enabled).toBe(0);
    });
  }

  it("spreads first connections over every port it is given, as SRV records would", { timeout: 60_000 }, async () => {
    const users = 40;
    const ports = farm.c2sPorts.map((p) => p.port);
    const out = path.join(outDir(), "sim-ports.json");
    const since = farm.lines.length;
    const r = await runCli(["sim", "--port", ports.join(","), "--security", "starttls", "--mechanism", "SCRAM-SHA-1", "--ca", process.env.XFARM_TEST_CERT!, "--users", String(users), "--rate", "40", "--hold", "0", "--workers", "0", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
    expect(res.target).toBe(`127.0.0.1:${ports.join(",")}`);
    expect(res.totals).toMatchObject({ arrived: users, logged_in: users, login_failed: 0 });
    // Every connection authenticates where it lands: userN's first one on front end (N-1) % 2 + 1.
    const auths = () => farm.lines.slice(since).filter((l) => l.msg === "authenticated");
    await expect.poll(() => auths().length).toBe(users + res.totals.redirects);
    for (let n = 1; n <= users; n++) {
      const where = auths().filter((l) => l.user === `user${n}@localhost`).map((l) => l.proc);
      expect(where, `user${n}`).toContain(`c2s-${((n - 1) % 2) + 1}`);
    }
  });

  // Last: it leaves c2s-2 draining.
  it("follows a drain: users moved after login log in again on the other front end and go on", { timeout: 120_000 }, async () => {
    const users = 100;
    const out = path.join(outDir(), "sim-drain.json");
    const scenario = path.join(outDir(), "drain.toml");
    fs.writeFileSync(
      scenario,
      `[server]
port = ${farm.c2sPorts[0]!.port}
[users]
count = ${users}
[[arrival]]
rate = 100
duration = 1
[session]
login_timeout = 60
[[actions]]
type = "presence"
[[actions]]
type = "roster"
[[actions]]
type = "sync"
[[actions]]
type = "think"
seconds = 8
[run]
workers = 2
duration = 90
`,
    );
    const sim = spawn(process.execPath, [CLI, "sim", scenario, "--progress", "lines", "--out", out], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let drained: Promise<{ code: number | null }> | null = null;
    sim.stderr!.on("data", (d) => {
      stderr += d;
      // Once every user holds a session, move c2s-2's users off it.
      if (!drained && new RegExp(`sessions ${users} `).test(stderr)) drained = farm.cli("c2s", "drain", "c2s-2", "--rate", "200");
    });
    const code = await new Promise((resolve) => sim.on("exit", resolve));
    expect(code, stderr).toBe(0);
    expect(drained, stderr).not.toBeNull();
    expect((await drained!).code).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
    const t = res.totals;
    expect(t.errors_by_kind).toEqual({});
    expect(t).toMatchObject({ arrived: users, logged_in: users, login_failed: 0, dropped: 0, closed: users });
    // Moved from c2s-2 back to c2s-1. Redirects to c2s-1 also count the rare
    // bounce before login (the "expect" trailing the client, as above), so they bound the
    // moves from above.
    expect(t.moved).toBeGreaterThan(0);
    expect(t.moved).toBeLessThanOrEqual(t.redirects_by_target[`127.0.0.1:${farm.c2sPorts[0]!.port}`] ?? 0);
    // Each moved user logged in once more.
    expect(res.latency_ms.login.count).toBe(users + t.moved);
  });

  it("refuses a target that is not on this machine", async () => {
    const r = await runCli(["sim", "--host", "192.0.2.1", "--users", "1", "--duration", "5"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("192.0.2.1 is not a loopback address");
    const s = await runCli(["sim", "--sources", "10.0.0.1", "--users", "1", "--duration", "5"]);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain("source address 10.0.0.1 is not a loopback address");
  });
});
