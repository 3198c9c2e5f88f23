// `xfarm sim` works unchanged against Debian's Prosody 0.12: the accounts are
// written straight into its data directory by `xfarm sim --create-accounts
// --prosody-data` (as mod_auth_internal_hashed stores them, no prosodyctl
// per user), then the same short chat scenario as against xfarm, in the
// clear (the harness's Prosody has no certificate), with SCRAM-SHA-1 and
// with PLAIN. Under CI=true a missing Prosody fails.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimResults } from "../sim/results.js";
import { Prosody } from "./harness/prosody.js";
import { expectCleanRun, runCli } from "./sim-expect.js";

const USERS = 50;
const MESSAGES_EACH = 4;
/** Accounts that never log in: targets for messages to offline users. */
const SPARE = 10;

describe("xfarm sim against Prosody", () => {
  let prosody: Prosody | undefined;

  beforeAll(async () => {
    if (!Prosody.available()) throw new Error("Prosody is not installed: apt-get install prosody");
    prosody = await Prosody.start({ domain: "localhost", users: [] });
  }, 60_000);

  afterAll(async () => {
    await prosody?.stop();
  });

  it("writes the accounts into Prosody's data directory in bulk", async () => {
    const p = prosody!;
    // Prosody's default iteration count (10,000) made in parallel; fewer keep the test quick.
    const r = await runCli(["sim", "--create-accounts", "--prosody-data", p.dataDir, "--users", String(USERS), "--accounts", String(USERS + SPARE), "--iterations", "1024"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${USERS + SPARE} accounts created (0 existed): user1 … user${USERS + SPARE}@localhost`);
    const file = fs.readFileSync(path.join(p.dataDir, "localhost", "accounts", "user7.dat"), "utf8");
    expect(file).toMatch(/\["stored_key"\] = "[0-9a-f]{40}"/);
    expect(file).not.toContain("pass7");
  });

  for (const mechanism of ["SCRAM-SHA-1", "PLAIN"]) {
    it(`runs the chat scenario with ${mechanism} in the clear`, { timeout: 120_000 }, async () => {
      const p = prosody!;
      const out = path.join(p.dir, `sim-${mechanism}.json`);
      const r = await runCli([
        "sim",
        "--port", String(p.port),
        "--security", "none",
        "--mechanism", mechanism,
        "--users", String(USERS),
        "--rate", "50",
        "--chat-rate", "2",
        "--chat-count", String(MESSAGES_EACH),
        "--workers", "2",
        "--duration", "90",
        "--login-timeout", "60",
        "--progress", "none",
        "--out", out,
      ]);
      expect(r.code, `${r.stderr}\n${p.logTail()}`).toBe(0);
      const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
      expectCleanRun(res, USERS, USERS * MESSAGES_EACH);
      // One server, no redirects, no TLS.
      expect(res.totals.redirects).toBe(0);
      expect(res.totals.connections).toBe(USERS);
      expect(res.totals.tls).toBe(0);
    });
  }

  it("runs a scenario file: messages to online users and to offline accounts", { timeout: 120_000 }, async () => {
    const p = prosody!;
    const file = path.join(p.dir, "offline.toml");
    fs.writeFileSync(
      file,
      `[server]
host = "127.0.0.1"
port = ${p.port}
security = "none"
mechanism = "SCRAM-SHA-1"

[users]
count = ${USERS}
accounts = ${USERS + SPARE}

[[arrival]]
rate = 100
duration = 1

[[actions]]
type = "presence"
[[actions]]
type = "roster"
[[actions]]
type = "sync"
[[actions]]
type = "chat"
to = "online"
rate = 5
count = 2
[[actions]]
type = "chat"
to = "offline"
rate = 5
count = 1
size = 200
[[actions]]
type = "sync"

[run]
workers = 0
duration = 60
`,
    );
    const out = path.join(p.dir, "sim-offline.json");
    const r = await runCli(["sim", file, "--progress", "none", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
    expectCleanRun(res, USERS, USERS * 2);
    // Every user online during the chat: the offline targets are the spare accounts, whose messages Prosody stores.
    expect(res.totals.msgs_sent_offline).toBe(USERS);
    expect(res.scenario.run.workers).toBe(0);
  });

  it("stops at the duration limit, closing the sessions still held", { timeout: 60_000 }, async () => {
    const p = prosody!;
    const out = path.join(p.dir, "sim-cut.json");
    const r = await runCli([
      "sim", "--port", String(p.port), "--security", "none", "--mechanism", "SCRAM-SHA-1",
      "--users", "20", "--rate", "100", "--hold", "600", "--duration", "3", "--workers", "1", "--progress", "none", "--out", out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
    expect(res.ended_by).toBe("duration");
    expect(res.totals).toMatchObject({ logged_in: 20, cut: 20, closed: 0, errors: 0 });
    expect(res.series.at(-1)!.sessions).toBe(0);
    expect(res.elapsed_s).toBeLessThan(30);
  });
});
