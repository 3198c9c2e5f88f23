// deploy/rolling-upgrade.sh on a farm of three front ends under a chat load.
// The router and the sm run under `xfarm start` (start.c2s_count = 0); each
// front end runs standalone, as systemd runs xfarm-c2s@NAME on its box, and the
// script's stop, upgrade and start commands drive them through a loopback
// stand-in for systemctl (harness/c2s-units.ts). Three kinds of simulated
// clients chat throughout: followers of see-other-host (as xmpp.js),
// XEP-0198 clients that resume and do not follow (as Conversations), and
// clients that neither resume nor follow (as libstrophe), the last two
// reconnecting through a three-port list as an SRV record would give it.
// The chat begins before the upgrade and ends a few seconds after it.
// Pass/fail: every front end upgraded in turn and serving again, every
// client logged in at the end, no message lost, none duplicated. The
// figures (logins again by kind, messages, duration) are printed and written
// to rolling-upgrade.json in the test directory.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminRequest } from "../lib/link/admin-link.js";
import { loadConfig } from "../lib/config.js";
import type { StatusEntry } from "../lib/link/control.js";
import { applyFlags, type SimFlags } from "../sim/flags.js";
import { freePortBase } from "../sim/free-ports.js";
import { CLI } from "../sim/local-farm.js";
import type { SimResults } from "../sim/results.js";
import { runSim } from "../sim/runner.js";
import { C2sUnits } from "./harness/c2s-units.js";
import { runCommand } from "../sim/run-command.js";
import { runCli } from "./sim-expect.js";

const SCRIPT = fileURLToPath(new URL("../deploy/rolling-upgrade.sh", import.meta.url));
const NAMES = ["c2s-1", "c2s-2", "c2s-3"];
const PER_KIND = 50;
/** The most seconds each user chats: far longer than the whole upgrade takes here (30 to 40 s); the chat ends with the upgrade. */
const CHAT_SECONDS = 150;
/** Seconds the chat goes on once the upgrade is done: messages over the farm as it now stands. */
const CHAT_AFTER_SECONDS = 3;
const KINDS: Record<string, SimFlags> = {
  followers: {},
  xep0198: { redirects: "ignore", smResume: true },
  "non-followers": { redirects: "ignore" },
};

/** Runs a bash script; resolves with its exit code and output. */
const runBash = (args: string[]) => runCommand("/bin/bash", args);

/** Polls `test` every 250 ms until it holds; throws after `timeoutMs`. */
async function until(what: string, test: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await test().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("the rolling upgrade of three front ends under a chat load", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-rolling-"));
  const configFile = path.join(dir, "xfarm.toml");
  let farm: ChildProcess;
  let units: C2sUnits;
  let ports: number[];

  const status = async (): Promise<StatusEntry[]> => (await adminRequest(loadConfig(configFile), { op: "status-request" }, "status")).entries;
  const frontEnds = async () => (await status()).filter((e) => e.role === "c2s");

  beforeAll(async () => {
    // base: the router, base+10+10i and +11+10i: front end i's ports.
    const base = await freePortBase([0, 10, 11, 20, 21, 30, 31]);
    ports = NAMES.map((_, i) => base + 10 + 10 * i);
    fs.writeFileSync(
      configFile,
      `domains = ["localhost"]
data_dir = ${JSON.stringify(path.join(dir, "data"))}
log_level = "info"

[router]
port = ${base}
addresses = ["127.0.0.1:${base}"]
component_port = 0

[console]
port = 0

[c2s]
host = "127.0.0.1"
public_host = "127.0.0.1"
tls_cert = ${JSON.stringify(process.env.XFARM_TEST_CERT)}
tls_key = ${JSON.stringify(process.env.XFARM_TEST_KEY)}
max_unauthenticated_per_address = 0
# Two cores shared with the simulator: a front end lagging over the default 500 ms would call
# itself full and close its ports mid-upgrade; this test is about the drains.
max_lag = 5000

[start]
c2s_count = 0

# No metrics ports: fixed defaults would collide with the other test files' farms, and the units share one config.
[metrics]
router_port = 0
sm_port = 0
c2s_port = 0

[secrets]
${NAMES.map((n) => `"${n}" = "secret-of-${n}"`).join("\n")}
`,
    );
    const log = fs.openSync(path.join(dir, "farm.log"), "a");
    farm = spawn(process.execPath, [CLI, "start", "--config", configFile], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    await until("the sm linked", async () => (await status()).some((e) => e.role === "sm"), 30_000);
    // The accounts are made while the front ends start.
    const making = runCli(["sim", "--create-accounts", "--users", String(3 * PER_KIND), "--password", "pw", "--iterations", "1024", "--config", configFile]);
    units = new C2sUnits(
      configFile,
      dir,
      Object.fromEntries(NAMES.map((n, i) => [n, { port: ports[i]!, tlsPort: ports[i]! + 1 }])),
    );
    await units.listen();
    for (const n of NAMES) units.start(n);
    // Every front end linked and reporting.
    await until("three front ends reporting", async () => (await frontEnds()).filter((e) => e.load).length === 3, 30_000);
    const made = await making;
    expect(made.code, made.stderr).toBe(0);
  }, 90_000);

  afterAll(async () => {
    await units?.close();
    if (farm && farm.exitCode === null) {
      const exited = new Promise((r) => farm.once("exit", r));
      farm.kill("SIGINT");
      await exited;
    }
    if (!process.env.XFARM_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("drains, stops, upgrades, starts and undrains each in turn; no message lost, every client logged in", { timeout: 240_000 }, async () => {
    let chatting = 0;
    let upgrade: Promise<{ code: number | null; stdout: string; stderr: string }> | null = null;
    let upgradeSeconds = 0;
    const chatOver = new AbortController();
    const runs = Object.entries(KINDS).map(([, kind], i) =>
      runSim(
        applyFlags(null, {
          port: ports.join(","),
          ca: process.env.XFARM_TEST_CERT!,
          users: String(PER_KIND),
          first: String(1 + i * PER_KIND),
          accounts: String(PER_KIND),
          password: "pw",
          rate: "50",
          chatRate: "1",
          chatDuration: String(CHAT_SECONDS),
          workers: "0",
          duration: "200",
          loginTimeout: "60",
          ...kind,
        }),
        {
          progress: "none",
          endChats: chatOver.signal,
          onSync: (s) => {
            // Everyone logged in and chatting: the upgrade begins.
            if (s.point !== 0 || ++chatting < Object.keys(KINDS).length) return;
            const t0 = Date.now();
            upgrade = runBash([
              SCRIPT,
              "--stop", units.command("stop"),
              "--upgrade", units.command("upgrade"),
              "--start", units.command("start"),
              "--xfarm", `${process.execPath} ${CLI}`,
              "--config", configFile,
              "--rate", "50",
              "--timeout", "120",
              "--ready-timeout", "60",
              ...NAMES,
            ]).then((r) => {
              upgradeSeconds = (Date.now() - t0) / 1000;
              setTimeout(() => chatOver.abort(), CHAT_AFTER_SECONDS * 1000);
              return r;
            });
          },
        },
      ),
    );
    const results = await Promise.all(runs);
    expect(upgrade).not.toBeNull();
    const script = await upgrade!;
    expect(script.code, script.stdout + script.stderr).toBe(0);
    expect(script.stdout).toContain(`done: ${NAMES.join(" ")}`);

    // Each front end in turn: stopped, upgraded while down, started; one at a time.
    const ops = units.events.filter((e) => e.op !== "start" || units.events.indexOf(e) >= NAMES.length);
    expect(ops.map((e) => `${e.op} ${e.name}`)).toEqual(NAMES.flatMap((n) => [`stop ${n}`, `upgrade ${n}`, `start ${n}`]));
    // Every front end runs its new process, undrained and reporting.
    const after = await frontEnds();
    expect(after.map((e) => [e.name, e.info.draining === true, e.load !== null]).sort()).toEqual(NAMES.map((n) => [n, false, true]));
    // ... and serves: a client that does not follow redirects logs in on each one's port.
    // Each port at once, with accounts of its own.
    const served = await Promise.all(
      ports.map((port, i) =>
        runSim(applyFlags(null, { port: String(port), ca: process.env.XFARM_TEST_CERT!, users: "3", first: String(1 + 3 * i), password: "pw", redirects: "ignore", hold: "0", workers: "0" }), { progress: "none" }),
      ),
    );
    for (const [i, r] of served.entries()) {
      expect(r.totals, `port ${ports[i]}`).toMatchObject({ logged_in: 3, login_failed: 0, errors: 0 });
      expect(r.totals.connections, `port ${ports[i]}`).toBe(3 + r.totals.redirects);
    }

    const chatSeconds = Math.round((results[0]!.syncs[1]!.released_s! - results[0]!.syncs[0]!.released_s!) * 1000) / 1000;
    const figures: Record<string, unknown> = { upgrade_s: upgradeSeconds, chat_s: chatSeconds };
    for (const [i, kind] of Object.keys(KINDS).entries()) {
      const t = results[i]!.totals;
      figures[kind] = {
        users: PER_KIND,
        reconnects: t.reconnects,
        relogins: t.relogins,
        relogged_users: t.relogged_users,
        resumed: t.resumed,
        resume_failed: t.resume_failed,
        msgs_sent: t.msgs_sent,
        msgs_delivered: t.msgs_delivered,
        msgs_delayed: t.msgs_received_delayed,
        msgs_lost: t.msgs_lost,
        msgs_lost_in_flight: t.msgs_lost_in_flight,
        msgs_duplicated: t.msgs_duplicated,
        msgs_bounced: t.msgs_bounced,
        msgs_resent: t.msgs_resent,
        errors: t.errors_by_kind,
      };
    }
    fs.writeFileSync(path.join(dir, "rolling-upgrade.json"), JSON.stringify(figures, null, 2));
    console.log(`rolling upgrade figures: ${JSON.stringify(figures)}`);
    for (const [i, kind] of Object.keys(KINDS).entries()) {
      const r = results[i] as SimResults;
      const t = r.totals;
      expect(r.ended_by, kind).toBe("done");
      expect(t.errors_by_kind, kind).toEqual({});
      expect(t, kind).toMatchObject({ arrived: PER_KIND, logged_in: PER_KIND, login_failed: 0, dropped: 0, cut: 0, closed: PER_KIND });
      // Every user was on one of the front ends, each drained once: every one lost its connection at least once.
      expect(t.reconnects, kind).toBeGreaterThanOrEqual(PER_KIND);
      expect(t.msgs_sent, kind).toBeGreaterThan(0);
      expect(t.msgs_lost, kind).toBe(0);
      expect(t.msgs_duplicated, kind).toBe(0);
      // Not even what a client without XEP-0198 wrote as it was moved: the front end reads on and routes it.
      expect(t.msgs_lost_in_flight, kind).toBe(0);
      expect(t.msgs_delivered + t.msgs_bounced, kind).toBe(t.msgs_sent);
      expect(r.syncs.map((s) => s.complete), kind).toEqual([true, true]);
    }
    const [followers, sm, plain] = results.map((r) => r.totals);
    // Followers follow: each move is a login again elsewhere.
    expect(followers!.moved).toBe(followers!.reconnects);
    expect(followers!.relogins).toBe(followers!.reconnects);
    // XEP-0198 clients resume their sessions on another front end: none logs in again.
    expect(sm!.resumed).toBe(sm!.reconnects);
    expect(sm!.relogins).toBe(0);
    expect(sm!.msgs_unconfirmed).toBe(0);
    // The others log in again, once per move.
    expect(plain!.relogins).toBe(plain!.reconnects);
  });

  it("stops at the first step that fails and leaves that front end drained, saying so", { timeout: 120_000 }, async () => {
    const script = await runBash([
      SCRIPT,
      "--stop", units.command("stop"),
      "--upgrade", "false",
      "--start", units.command("start"),
      "--xfarm", `${process.execPath} ${CLI}`,
      "--config", configFile,
      "--ready-timeout", "60",
      "c2s-2", "c2s-3",
    ]);
    expect(script.code).toBe(1);
    expect(script.stderr).toContain('FAILED at "upgrade" of c2s-2: c2s-2 is drained and stopped');
    expect(script.stderr).toContain("c2s undrain c2s-2");
    // c2s-2 is down, c2s-3 untouched; once c2s-2 is back it stays drained until undrained.
    expect(units.pid("c2s-2")).toBeUndefined();
    expect((await frontEnds()).map((e) => [e.name, e.info.draining === true]).sort()).toEqual([["c2s-1", false], ["c2s-3", false]]);
    units.start("c2s-2");
    await until("c2s-2 back, drained", async () => (await frontEnds()).some((e) => e.name === "c2s-2" && e.load !== null && e.info.draining === true), 30_000);
    const undrain = await runCli(["c2s", "undrain", "c2s-2", "--config", configFile]);
    expect(undrain.code, undrain.stderr).toBe(0);
    await until("c2s-2 active", async () => (await frontEnds()).some((e) => e.name === "c2s-2" && e.info.draining !== true), 30_000);
  });
});
