// What a soak (sim/soak.ts) found: per farm process its PIDs and memory at
// start, peak and end, the honest clients' logins and messages, every attack
// by kind and how the farm answered it; the verdict, and the table printed
// at the end. docs/security.md ("How it is tested") explains how to read it.
import type { SimResults } from "./results.js";
import type { AttackKind } from "./soak-attacks.js";
import type { AttackRecord } from "./soak-schedule.js";

export const SOAK_FORMAT = "xfarm-soak/1";

/** The soak's phases: the farm starting, honest users logging in, attacks, the honest run's end, the farm left alone. */
export type Phase = "setup" | "login" | "attack" | "drain" | "settle";

export interface ProcSample {
  pid: number;
  rssKb: number;
  /** CPU time the process has used since it started, seconds. */
  cpuS: number;
}

export interface SeriesRow {
  /** Seconds since the soak began. */
  t: number;
  phase: Phase;
  procs: Record<string, ProcSample>;
}

export interface ProcessFigures {
  name: string;
  pid_start: number;
  pid_end: number;
  /** Times the supervisor started it again. */
  restarts: number;
  rss_start_kb: number;
  rss_peak_kb: number;
  rss_end_kb: number;
  /**
   * The peak of the last third of the attacks less that of the first third:
   * a leak grows it with the run's length, a process at a plateau does not.
   */
  drift_kb: number;
  /** CPU used from the start sample to the end one, seconds. */
  cpu_s: number;
  /** How far over its start the end may be (memoryAllowanceKb). */
  allowance_kb: number;
  near: boolean;
}

export interface HonestFigures {
  users: number;
  logged_in: number;
  login_failed: number;
  /** Sessions that ended before the user closed them. */
  dropped: number;
  errors: number;
  errors_by_kind: Record<string, number>;
  msgs_sent: number;
  msgs_received: number;
  msgs_missing: number;
  /** The last sync point was released because every message had arrived, not by its timeout. */
  sync_complete: boolean;
  /** Logins of the accounts the guessers try, by their owners from their own addresses, once before the attacks and throughout. */
  relogins: { accounts: number; ok: number; failed: number; redirected: number; slowest_s: number; failures: string[] };
}

export interface KindFigures {
  row: string;
  what: string;
  made: number;
  outcomes: Record<string, number>;
  counts: Record<string, number>;
}

export interface SoakReport {
  format: typeof SOAK_FORMAT;
  started: string;
  finished: string;
  command: string;
  options: Record<string, unknown>;
  farm: { c2s: number; sm: number; dir: string };
  /** Seconds each phase lasted. */
  phases: Partial<Record<Phase, number>>;
  processes: ProcessFigures[];
  honest: HonestFigures;
  attacks: { made: number; by_kind: Record<string, KindFigures>; list: AttackRecord[] };
  verdict: { clean: boolean; reasons: string[] };
  series: SeriesRow[];
  sim: Pick<SimResults, "totals" | "latency_ms" | "syncs" | "ended_by">;
}

/** Growth always allowed, KiB: what a Node process's RSS wanders by at rest (allocator and V8 heap sizing). */
export const MEMORY_FLOOR_KB = 32 * 1024;
/** The share of what a process took at its peak over its start that it may keep at the end. */
export const MEMORY_KEEP = 0.5;

/**
 * How far over its start a process's RSS may end: MEMORY_FLOOR_KB, or
 * MEMORY_KEEP of its excursion to the peak if that is more. Node keeps
 * heap it grew into for a while and the allocator keeps freed pages, so
 * an end at the start is not to be expected after a burst; a leak shows as
 * an end at or near the peak, with the peak itself growing over the run.
 */
export function memoryAllowanceKb(startKb: number, peakKb: number): number {
  return Math.max(MEMORY_FLOOR_KB, MEMORY_KEEP * (peakKb - startKb));
}

export function processFigures(name: string, series: SeriesRow[], startAt: number, restarts: number): ProcessFigures {
  const rows = series.filter((r) => r.procs[name]);
  const first = rows.find((r) => r.t >= startAt) ?? rows[0]!;
  const last = rows.at(-1)!;
  const start = first.procs[name]!;
  const end = last.procs[name]!;
  const peak = Math.max(...rows.filter((r) => r.t >= first.t).map((r) => r.procs[name]!.rssKb));
  const allowance = memoryAllowanceKb(start.rssKb, peak);
  const attack = rows.filter((r) => r.phase === "attack");
  const third = Math.floor(attack.length / 3);
  const peakOf = (part: SeriesRow[]) => Math.max(...part.map((r) => r.procs[name]!.rssKb));
  return {
    name,
    pid_start: start.pid,
    pid_end: end.pid,
    restarts,
    rss_start_kb: start.rssKb,
    rss_peak_kb: peak,
    rss_end_kb: end.rssKb,
    drift_kb: third ? peakOf(attack.slice(-third)) - peakOf(attack.slice(0, third)) : 0,
    // A restarted process's counter starts again: then only the last one's is known.
    cpu_s: Math.round((end.pid === start.pid ? end.cpuS - start.cpuS : end.cpuS) * 10) / 10,
    allowance_kb: Math.round(allowance),
    near: end.rssKb - start.rssKb <= allowance,
  };
}

export function byKind(kinds: readonly AttackKind[], records: AttackRecord[]): Record<string, KindFigures> {
  const out: Record<string, KindFigures> = {};
  for (const k of kinds) out[k.name] = { row: k.row, what: k.what, made: 0, outcomes: {}, counts: {} };
  for (const r of records) {
    const f = out[r.kind]!;
    f.made++;
    f.outcomes[r.outcome] = (f.outcomes[r.outcome] ?? 0) + 1;
    for (const [k, v] of Object.entries(r.counts ?? {})) f.counts[k] = (f.counts[k] ?? 0) + v;
  }
  return out;
}

/** Why the soak is not clean; empty when it is. */
export function verdictReasons(r: Omit<SoakReport, "verdict">): string[] {
  const out: string[] = [];
  const h = r.honest;
  if (h.logged_in < h.users || h.login_failed) out.push(`${h.users - h.logged_in} honest users did not log in (${h.login_failed} failed)`);
  if (h.relogins.failed) out.push(`${h.relogins.failed} honest logins of guessed accounts failed`);
  if (h.dropped) out.push(`${h.dropped} honest sessions were dropped`);
  if (h.errors) out.push(`honest clients saw ${h.errors} errors: ${Object.entries(h.errors_by_kind).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  if (h.msgs_missing || !h.sync_complete) out.push(`${h.msgs_missing} honest messages missing`);
  if (!h.msgs_sent) out.push("no honest message was sent");
  for (const p of r.processes) {
    if (p.restarts || p.pid_end !== p.pid_start) out.push(`${p.name} was restarted (pid ${p.pid_start} → ${p.pid_end})`);
    if (!p.near) out.push(`${p.name} ended at ${mb(p.rss_end_kb)} MB, more than ${mb(p.allowance_kb)} MB over its start (${mb(p.rss_start_kb)} MB; peak ${mb(p.rss_peak_kb)} MB)`);
  }
  return out;
}

const mb = (kb: number) => (kb / 1024).toFixed(1);
const signed = (kb: number) => (kb >= 0 ? "+" : "") + mb(kb);

function table(header: string[], rows: string[][], right: number[] = []): string[] {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The table printed at the end of a soak. */
export function soakTable(r: SoakReport): string {
  const out: string[] = [];
  const attackMin = ((r.phases.attack ?? 0) / 60).toFixed(1);
  out.push(`xfarm soak: ${attackMin} min of attacks beside ${r.honest.users} honest users; ${r.farm.c2s} c2s, ${r.farm.sm} sm; ${r.started} to ${r.finished}`);
  out.push("");
  out.push(
    ...table(
      ["process", "pid", "restarts", "RSS start MB", "peak MB", "end MB", "end−start MB", "allowed MB", "drift MB", "CPU s"],
      r.processes.map((p) => [
        p.name,
        p.pid_start === p.pid_end ? String(p.pid_start) : `${p.pid_start}→${p.pid_end}`,
        String(p.restarts),
        mb(p.rss_start_kb),
        mb(p.rss_peak_kb),
        mb(p.rss_end_kb),
        signed(p.rss_end_kb - p.rss_start_kb),
        mb(p.allowance_kb),
        signed(p.drift_kb),
        p.cpu_s.toFixed(1),
      ]),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    ),
  );
  const h = r.honest;
  out.push("");
  out.push(`honest logins    ${h.logged_in} of ${h.users} (failed ${h.login_failed}); sessions dropped ${h.dropped}; errors ${h.errors}`);
  out.push(
    `guessed accounts ${h.relogins.accounts}: their owners logged in ${h.relogins.ok} times from their own addresses, before and during the attacks (${h.relogins.redirected} redirected), failed ${h.relogins.failed}, slowest ${h.relogins.slowest_s.toFixed(1)} s`,
  );
  out.push(`honest messages  sent ${h.msgs_sent}, delivered ${h.msgs_received}, missing ${h.msgs_missing}${h.sync_complete ? "" : " (the final sync timed out)"}`);
  out.push("");
  out.push(`attacks          ${r.attacks.made} made`);
  const rows: string[][] = [];
  for (const [name, k] of Object.entries(r.attacks.by_kind)) {
    const outcomes = Object.entries(k.outcomes).sort((a, b) => b[1] - a[1]);
    const counts = Object.entries(k.counts).map(([c, v]) => `${c} ${v}`).join(", ");
    if (!outcomes.length) rows.push([k.row, name, "0", "(never made)"]);
    outcomes.forEach(([o, n], i) => rows.push(i ? ["", "", "", `${n} × ${o}`] : [k.row, name, String(k.made), `${n} × ${o}`]));
    if (counts) rows.push(["", "", "", `(${counts})`]);
  }
  out.push(...table(["row", "kind", "made", "how the farm answered"], rows, [2]));
  out.push("");
  out.push(r.verdict.clean ? "verdict: clean" : `verdict: NOT clean\n${r.verdict.reasons.map((x) => `  - ${x}`).join("\n")}`);
  return out.join("\n") + "\n";
}
