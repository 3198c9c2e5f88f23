// The reconnect storm (`xfarm bench --only storm`): N users log in over the
// farm's c2s as the idle step does and wait for each other; then the c2s that
// holds the most client connections is SIGKILLed, as a crash would end it,
// and every client it held reconnects, after a random wait of 0 …
// `delay` seconds (real clients back off with jitter), through its list of
// the farm's ports: the dead port refuses, the next takes it. The figure is
// how long until every one of them is logged in again, with the spread of
// each client's own time back (its connection lost → bound again).
// xfarm only: a server of one process has no other front end to go to.
import fs from "node:fs";
import { IDLE_RATE, round, scenario, type StepEnv } from "./bench-steps.js";
import type { XfarmTarget } from "./bench-targets.js";
import { runSim } from "../sim/runner.js";
import type { SimResults } from "../sim/results.js";

export interface StormFigure {
  /** Sessions asked for, and logged in when the c2s was killed. */
  asked: number;
  held: number;
  /** The c2s killed (the one with the most client sockets), and its client sockets then. */
  killed: string;
  killed_sockets: number;
  /** Seconds of random wait before a client reconnects: uniform in 0 … this. */
  reconnect_delay_s: number;
  /** Sessions the simulator lost, and those logged in again (or resumed) before the hold ended. */
  lost: number;
  back: number;
  /**
   * Seconds from the kill until the last lost session was back: the slowest
   * client's own time back (each client loses its connection within
   * milliseconds of the kill). Null when some never came back.
   */
  all_back_s: number | null;
  /** Each client's time back, connection lost → bound again, jitter included; ms. */
  relogin_p50_ms: number;
  relogin_p99_ms: number;
  /** Users whose session ended without coming back, or whose login failed. */
  failed: number;
  /** <see-other-host/> followed over the whole run (logins and the storm), by target. */
  redirects_by_target: Record<string, number>;
  errors_by_kind: Record<string, number>;
}

/** Client sockets a process holds: its file descriptors that are sockets (listeners and links are a handful). */
function sockets(pid: number): number {
  let n = 0;
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone
  }
  return n;
}

/** `hold`: seconds the sessions stay after the kill, the time they have to come back. */
export async function measureStorm(target: XfarmTarget, env: StepEnv, n: number, delay: number, hold: number): Promise<StormFigure> {
  const fill = Math.ceil(n / IDLE_RATE);
  const sc = scenario(target, env, {
    security: "none",
    mechanism: "PLAIN",
    users: n,
    rate: IDLE_RATE,
    seconds: fill,
    poisson: true,
    actions: [{ type: "presence" }, { type: "roster" }, { type: "sync", timeout: 300 }, { type: "think", seconds: hold, random: false }, { type: "close" }],
    duration: fill + 300 + hold + 60,
  });
  // Time enough for a login in the storm: a client that gives up is a failure, not a figure.
  sc.session = { ...sc.session, reconnect: true, reconnect_delay: delay, login_timeout: Math.max(sc.session.login_timeout, 120) };
  let killed = "";
  let killedSockets = 0;
  let held = 0;
  const r: SimResults = await runSim(sc, {
    progress: env.progress,
    onSync: (s) => {
      if (s.point !== 0) return;
      held = s.reached;
      let most = -1;
      for (const [name, pid] of target.c2sPids()) {
        const k = sockets(pid);
        if (k > most) [most, killed] = [k, name];
      }
      const pid = target.c2sPids().get(killed);
      killedSockets = most;
      if (pid) process.kill(pid, "SIGKILL");
    },
  });
  const t = r.totals;
  const back = t.relogins + t.resumed;
  const relogin = r.latency_ms.relogin;
  return {
    asked: n,
    held,
    killed,
    killed_sockets: killedSockets,
    reconnect_delay_s: delay,
    lost: t.reconnects,
    back,
    all_back_s: t.reconnects > 0 && back >= t.reconnects ? round(relogin.max / 1000, 2) : null,
    relogin_p50_ms: relogin.p50,
    relogin_p99_ms: relogin.p99,
    failed: t.dropped + t.login_failed,
    redirects_by_target: t.redirects_by_target,
    errors_by_kind: t.errors_by_kind,
  };
}
