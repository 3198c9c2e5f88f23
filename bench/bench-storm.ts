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
import { cpuMicrosPer, sampleTreeWithout, TreeSampler, type CpuMicros, type Sample } from "../sim/process-tree.js";
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
  /**
   * The farm's CPU from the kill until the last lost session was back (the
   * next whole-second sample after it), µs per session back: every farm
   * process, the killed one's next process included (under the same name),
   * the killed one's CPU before the kill not. It counts what the farm does
   * meanwhile for the sessions that stayed too (little: they are idle).
   * A cost, not a time: it holds on a busy machine, where the seconds do not.
   */
  cpu_us: CpuMicros | null;
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
  // Set at the kill (a property, which the callback's assignment does not hide from the code after the run).
  const cpu: { atKill?: Sample; sampler?: TreeSampler } = {};
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
      if (!pid) return;
      cpu.atKill = sampleTreeWithout(target.pid, pid);
      cpu.sampler = new TreeSampler(target.pid);
      process.kill(pid, "SIGKILL");
    },
  });
  cpu.sampler?.stop();
  const t = r.totals;
  const back = t.relogins + t.resumed;
  const relogin = r.latency_ms.relogin;
  const allBack = t.reconnects > 0 && back >= t.reconnects ? relogin.max / 1000 : null;
  return {
    asked: n,
    held,
    killed,
    killed_sockets: killedSockets,
    reconnect_delay_s: delay,
    lost: t.reconnects,
    back,
    all_back_s: allBack === null ? null : round(allBack, 2),
    relogin_p50_ms: relogin.p50,
    relogin_p99_ms: relogin.p99,
    failed: t.dropped + t.login_failed,
    redirects_by_target: t.redirects_by_target,
    errors_by_kind: t.errors_by_kind,
    cpu_us: stormMicros(cpu.atKill, cpu.sampler, allBack, back),
  };
}

/** CPU µs per session back, from the sample at the kill to the first one after the last was back. */
function stormMicros(atKill: Sample | undefined, sampler: TreeSampler | undefined, allBack: number | null, back: number): CpuMicros | null {
  if (!atKill || !sampler || allBack === null || back === 0) return null;
  const end = sampler.samples.find((s) => s.at >= atKill.at + allBack * 1000);
  if (!end) return null;
  return cpuMicrosPer([atKill, end], back / ((end.at - atKill.at) / 1000));
}
