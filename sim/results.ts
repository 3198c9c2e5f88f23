// The outcome of a run: the JSON file `xfarm sim --out` writes (the later
// HTML report and `npm run bench` read it), and the summary table printed
// at the end. docs/sim.md describes every field.
import { encodeIntoCompressedBase64 } from "hdr-histogram-js";
import type { Scenario } from "./scenario.js";
import { HISTOGRAMS, percentiles, type Counters, type HistName, type Merger, type Percentiles, type SeriesRow } from "./stats.js";

export const RESULTS_FORMAT = "xfarm-sim/1";

export interface SyncOutcome {
  point: number;
  /** Seconds since the run's start when it was released; null: never (the run ended first). */
  released_s: number | null;
  /** Every user there and every message delivered (false: released by its timeout). */
  complete: boolean;
  reached: number;
  missed: number;
}

export interface SimResults {
  format: typeof RESULTS_FORMAT;
  started: string;
  finished: string;
  elapsed_s: number;
  /** Why the run ended: every user finished, the duration limit, or an interrupt. */
  ended_by: "done" | "duration" | "interrupt" | "error";
  target: string;
  scenario: Scenario;
  /** Arrivals the phases bring within the duration (capped by users.count). */
  planned_users: number;
  totals: Counters & {
    peak_sessions: number;
    redirects_by_target: Record<string, number>;
    errors_by_kind: Record<string, number>;
    /** msgs_sent − msgs_received: messages to online users not seen live. */
    msgs_missing: number;
    /** msgs_unconfirmed − msgs_unconfirmed_accounted: sent without resumption just before a cut, and never seen again. */
    msgs_lost_in_flight: number;
    /** msgs_sent − msgs_delivered − msgs_bounced − msgs_lost_in_flight: messages to online users the server had, and lost. */
    msgs_lost: number;
  };
  latency_ms: Record<HistName, Percentiles>;
  /** The whole-run histograms, HDR compressed base64, values in microseconds. */
  histograms: Partial<Record<HistName, string>>;
  syncs: SyncOutcome[];
  sim: {
    workers: { pid: number; users: number; base_rss_mb: number; peak_rss_mb: number }[];
    peak_rss_mb: number;
    /** (simulator RSS at peak sessions − its RSS before the first user) / peak sessions; null under 100 sessions (noise). */
    kb_per_session: number | null;
  };
  series: SeriesRow[];
}

export function buildResults(opts: {
  scenario: Scenario;
  planned: number;
  started: number;
  finished: number;
  endedBy: SimResults["ended_by"];
  merger: Merger;
  syncs: SyncOutcome[];
  workers: { pid: number; users: number; baseRss: number; peakRss: number }[];
}): SimResults {
  const m = opts.merger;
  const c = m.counters();
  const latency = {} as Record<HistName, Percentiles>;
  const histograms: Partial<Record<HistName, string>> = {};
  for (const name of HISTOGRAMS) {
    const h = m.totals.get(name)!;
    latency[name] = percentiles(h);
    if (h.totalCount > 0) histograms[name] = encodeIntoCompressedBase64(h);
  }
  const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
  const baseRss = opts.workers.reduce((a, w) => a + w.baseRss, 0);
  const peakSessions = Math.max(0, ...m.series.map((r) => r.sessions));
  const sc = opts.scenario;
  return {
    format: RESULTS_FORMAT,
    started: new Date(opts.started).toISOString(),
    finished: new Date(opts.finished).toISOString(),
    elapsed_s: Math.round(opts.finished - opts.started) / 1000,
    ended_by: opts.endedBy,
    target: `${sc.server.host}:${sc.server.ports.join(",")}`,
    scenario: sc,
    planned_users: opts.planned,
    totals: {
      ...c,
      peak_sessions: peakSessions,
      redirects_by_target: m.redirects(),
      errors_by_kind: m.errors(),
      msgs_missing: c.msgs_sent - c.msgs_received,
      msgs_lost_in_flight: c.msgs_unconfirmed - c.msgs_unconfirmed_accounted,
      msgs_lost: c.msgs_sent - c.msgs_delivered - c.msgs_bounced - (c.msgs_unconfirmed - c.msgs_unconfirmed_accounted),
    },
    latency_ms: latency,
    histograms,
    syncs: opts.syncs,
    sim: {
      workers: opts.workers.map((w) => ({ pid: w.pid, users: w.users, base_rss_mb: mb(w.baseRss), peak_rss_mb: mb(w.peakRss) })),
      peak_rss_mb: Math.max(0, ...m.series.map((r) => r.sim_rss_mb)),
      kb_per_session: m.peak.sessions >= 100 && baseRss > 0 ? Math.round(((m.peak.simRss - baseRss) / 1024 / m.peak.sessions) * 100) / 100 : null,
    },
    series: m.series,
  };
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The table printed at the end of a run. */
export function summaryTable(r: SimResults): string {
  const t = r.totals;
  const sc = r.scenario;
  const lines: string[] = [];
  lines.push(
    `xfarm sim: ${r.target} (${sc.server.security}, ${sc.server.mechanism}), ${r.planned_users} users, ` +
      `${Math.max(1, sc.run.workers)} worker${sc.run.workers > 1 ? "s" : ""}${sc.run.workers === 0 ? " (in process)" : ""}, ` +
      `${r.elapsed_s.toFixed(1)} s, ended by ${r.ended_by}`,
  );
  lines.push(
    `users       arrived ${t.arrived}  logged in ${t.logged_in}  login failed ${t.login_failed}  closed ${t.closed}  cut ${t.cut}  dropped ${t.dropped}  peak sessions ${t.peak_sessions}`,
  );
  lines.push(`connections ${t.connections} (${t.connected} established, ${t.tls} TLS)  redirects ${t.redirects}${redirectList(t.redirects_by_target)}${t.moved ? `, ${t.moved} after login` : ""}`);
  if (t.reconnects) {
    lines.push(
      `reconnects  ${t.reconnects} sessions lost  ${t.resumed} resumed (${t.resume_failed} refused)  ${t.relogins} logins again by ${t.relogged_users} users`,
    );
  }
  if (t.msgs_sent || t.msgs_sent_offline || t.msgs_received || t.msgs_received_delayed) {
    lines.push(
      `messages    sent ${t.msgs_sent} to online, ${t.msgs_sent_offline} to offline  received ${t.msgs_received} live, ${t.msgs_received_delayed} delayed  missing ${t.msgs_missing}  no target ${t.msgs_no_target}${t.msgs_earlier_run ? `  an earlier run's ${t.msgs_earlier_run}` : ""}`,
    );
    lines.push(
      `            delivered ${t.msgs_delivered}  lost ${t.msgs_lost}  lost in flight ${t.msgs_lost_in_flight} (of ${t.msgs_unconfirmed} unconfirmed)  duplicated ${t.msgs_duplicated}  bounced ${t.msgs_bounced}  resent ${t.msgs_resent}`,
    );
  }
  if (t.sm_enabled) lines.push(`stream mgmt enabled ${t.sm_enabled}  acks sent ${t.sm_acks_sent}  acks received ${t.sm_acks_received}`);
  lines.push(`errors      ${t.errors}${t.errors ? "  " + Object.entries(t.errors_by_kind).map(([k, v]) => `${k} ${v}`).join(", ") : ""}`);
  if (r.sim.kb_per_session !== null) lines.push(`simulator   peak RSS ${r.sim.peak_rss_mb} MB, ${r.sim.kb_per_session} KB per session`);
  lines.push("");
  const cols = ["count", "min", "p50", "p90", "p99", "p99.9", "max"] as const;
  lines.push(`latency ms  ${cols.map((c) => c.padStart(9)).join("")}`);
  for (const name of HISTOGRAMS) {
    const p = r.latency_ms[name];
    if (!p.count) continue;
    lines.push(`${name.padEnd(12)}${cols.map((c) => (c === "count" ? String(p.count) : fmt(p[c])).padStart(9)).join("")}`);
  }
  return lines.join("\n") + "\n";
}

function redirectList(by: Record<string, number>): string {
  const e = Object.entries(by);
  return e.length ? ` (${e.map(([k, v]) => `${k} ${v}`).join(", ")})` : "";
}

/** One progress line: connected, logged in, msgs/s, p99, errors. */
export function progressLine(row: SeriesRow, totals: { arrived: number; redirects: number; errors: number }, planned: number): string {
  const p99 = (x: number | null) => (x === null ? "-" : `${fmt(x)}ms`);
  return (
    `[${String(row.t).padStart(4)}s] arrived ${totals.arrived}/${planned} open ${row.open} sessions ${row.sessions} ` +
    `logins/s ${row.logins} msgs/s ${row.msgs_sent}/${row.msgs_received} login p99 ${p99(row.login_p99)} msg p99 ${p99(row.msg_p99)} ` +
    `redirects ${totals.redirects} errors ${totals.errors}`
  );
}
