// The simulator's clients that do not follow redirects (session.redirects =
// "ignore", as Smack, Conversations, Gajim and libstrophe): against a real
// farm of two front ends, one of which is stopped (SIGTERM: a stream without
// resumption ends with system-shutdown, a resumable one is sent to the other
// front end and left to the sm) while its users chat. Each client reconnects
// through its own two-port list, the XEP-0198 ones resume, and the run counts
// who had to log in again and what became of every message.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyFlags } from "../sim/flags.js";
import type { SimResults } from "../sim/results.js";
import { runSim } from "../sim/runner.js";
import { Farm } from "./harness/farm.js";

const USERS = 40;

describe("xfarm sim clients that reconnect through their own port list", () => {
  let farm: Farm;

  beforeAll(async () => {
    // The shipped login window, not the harness's 5 s: 40 users logging in again at once on a loaded
    // machine may take longer, and this test is about what the clients do, not about timeouts.
    farm = await Farm.create({ c2sCount: 2, logLevel: "info", c2s: { public_host: "127.0.0.1", auth_timeout: 30 } });
    await farm.start();
    // Each knows the other's load: c2s-2 has a front end to send its resumable clients to when it stops.
    await farm.waitReporting("c2s-1", 1);
    await farm.waitReporting("c2s-2", 1);
    await farm.addUsers("user", 2 * USERS, "pw", 1024);
  }, 60_000);

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("logs every user in again or resumes it when a front end stops mid-chat, and accounts for every message", { timeout: 120_000 }, async () => {
    const ports = farm.c2sPorts.map((p) => String(p.port)).join(",");
    const kinds = { plain: { first: "1" }, resume: { first: String(USERS + 1), smResume: true } };
    let inChat = 0;
    let stopped = false;
    const runs = Object.entries(kinds).map(([, k]) => {
      const sc = applyFlags(null, {
        port: ports,
        redirects: "ignore",
        ca: process.env.XFARM_TEST_CERT!,
        users: String(USERS),
        accounts: String(USERS),
        password: "pw",
        rate: "40",
        chatRate: "2",
        chatDuration: "6",
        workers: "0",
        duration: "90",
        loginTimeout: "30",
        ...k,
      });
      return runSim(sc, {
        progress: "none",
        onSync: (s) => {
          // Once both runs chat, stop c2s-2 (its supervisor starts it again).
          if (s.point !== 0 || ++inChat < 2 || stopped) return;
          stopped = true;
          process.kill(farm.childPid("c2s-2"), "SIGTERM");
        },
      });
    });
    const [plain, resume] = (await Promise.all(runs)) as [SimResults, SimResults];
    expect(stopped).toBe(true);
    for (const r of [plain, resume]) {
      const t = r.totals;
      expect(t.errors_by_kind).toEqual({});
      expect(t).toMatchObject({ arrived: USERS, logged_in: USERS, login_failed: 0, dropped: 0, cut: 0, closed: USERS });
      // Users of c2s-2 lost their connection; none followed anything.
      expect(t.reconnects).toBeGreaterThan(0);
      // Every message to an online user arrived, came back, or was sent as the connection was cut.
      expect(t.msgs_sent).toBeGreaterThan(0);
      expect(t.msgs_lost).toBe(0);
      expect(t.msgs_delivered + t.msgs_bounced + t.msgs_lost_in_flight).toBe(t.msgs_sent);
      expect(r.syncs.map((s) => s.complete)).toEqual([true, true]);
    }
    // Without XEP-0198 each lost session is a login again, after a system-shutdown.
    expect(plain.totals).toMatchObject({ moved: 0, relogins: plain.totals.reconnects, resumed: 0, resume_failed: 0, msgs_resent: 0 });
    // With it, c2s-2 sent each of its clients to c2s-1 (ignored here) and left the session to the sm,
    // so each reconnect resumes it: no login again.
    const t = resume.totals;
    expect(t).toMatchObject({ moved: t.reconnects, resumed: t.reconnects, resume_failed: 0, relogins: 0 });
    expect(t.msgs_unconfirmed).toBe(0);
  });
});
