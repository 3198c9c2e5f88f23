// A front end SIGKILLed under PLAIN sessions: its clients log in again on the
// other front end, and on its restarted process, without a PBKDF2 each, for
// the sms sent both their sessions' vouchers (protocol §2.8).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyFlags } from "../sim/flags.js";
import { runSim } from "../sim/runner.js";
import { Farm } from "./harness/farm.js";
import { httpGet, sample } from "./harness/metrics.js";
import { runCli } from "./sim-expect.js";

const USERS = 12;
const HALF = USERS / 2;

describe("a lost front end's PLAIN clients", () => {
  let farm: Farm;
  const scrape = async (name: string) => (await httpGet(farm.metricsUrl(name, "/metrics"))).body;
  const checks = async (name: string) => {
    const text = await scrape(name);
    return { pbkdf2: sample(text, "xfarm_c2s_plain_checks_total", { proof: "pbkdf2" }), vouched: sample(text, "xfarm_c2s_plain_checks_total", { proof: "vouched" }) };
  };
  const vouchersAt = async (name: string) => sample(await scrape(name), "xfarm_c2s_plain_vouchers");
  /** Half the users (the first or the second) log in with PLAIN over STARTTLS at one front end, and leave. */
  const loginAt = (c2s: number, half: 0 | 1) =>
    runCli(["sim", "--port", String(farm.c2sPorts[c2s]!.port), "--ca", process.env.XFARM_TEST_CERT!, "--mechanism", "PLAIN", "--first", String(1 + half * HALF), "--users", String(HALF), "--password", "pw", "--rate", "20", "--duration", "20", "--login-timeout", "15", "--workers", "0"]);

  beforeAll(async () => {
    // No redirect for balance: each client stays where it logs in. A grace longer than any restart, so
    // that the sessions are still held when the killed front end's next process links.
    farm = await Farm.create({ c2sCount: 2, smCount: 2, logLevel: "info", sm: { c2s_grace: 60 }, c2s: { public_host: "127.0.0.1", auth_timeout: 30, redirect_floor: 1_000_000 } });
    await farm.start();
    await farm.waitReporting("c2s-1", 1);
    await farm.addUsers("user", USERS, "pw", 1024);
  }, 60_000);

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("log in again elsewhere and on its next process with a voucher, not a PBKDF2", { timeout: 120_000 }, async () => {
    // The supervisor is held, so that the killed front end stays down until the survivor has been tried.
    const supervisor = farm.pid!;
    const killed = farm.childPid("c2s-1");
    const sc = applyFlags(null, {
      port: String(farm.c2sPorts[0]!.port),
      ca: process.env.XFARM_TEST_CERT!,
      mechanism: "PLAIN",
      users: String(USERS),
      password: "pw",
      rate: "20",
      workers: "0",
      duration: "60",
      loginTimeout: "15",
    });
    sc.actions = [{ type: "presence" }, { type: "sync", timeout: 30 }, { type: "think", seconds: 60, random: false }];
    const run = await runSim(sc, {
      progress: "none",
      onSync: (s) => {
        if (s.point !== 0) return;
        process.kill(supervisor, "SIGSTOP");
        process.kill(killed, "SIGKILL");
      },
    });
    try {
      expect(run.totals).toMatchObject({ logged_in: USERS, dropped: USERS });
      // The sms send c2s-2 a voucher for each user that c2s-1 held.
      await farm.until("c2s-2 holds the vouchers", () => vouchersAt("c2s-2"), (n) => n === USERS);
      // Half of them come back there. Each one's presence reaches its old session, which ends at that
      // (its front end is unreachable): the other half's sessions stay, waiting for c2s-1's next process.
      const before = await checks("c2s-2");
      expect((await loginAt(1, 0)).code).toBe(0);
      expect(await checks("c2s-2")).toEqual({ pbkdf2: before.pbkdf2, vouched: before.vouched + HALF });
      expect(await vouchersAt("c2s-2")).toBe(HALF);
    } finally {
      process.kill(supervisor, "SIGCONT");
    }
    // c2s-1's next process is sent those of the sessions still held, as it links: their clients may land there first.
    await farm.waitRestarted("c2s-1", killed);
    await farm.until("c2s-1 holds the vouchers", () => vouchersAt("c2s-1").catch(() => -1), (n) => n === HALF, 30_000);
    await farm.waitLinked(0, ["c2s-1"]);
    expect((await loginAt(0, 1)).code).toBe(0);
    expect(await checks("c2s-1")).toEqual({ pbkdf2: 0, vouched: HALF });
  });
});
