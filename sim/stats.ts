// What the simulator measures, and how the parent merges the workers'
// figures. Latencies go into HDR histograms in microseconds; each worker
// sends, every second, its cumulative counters and the histograms of that
// second (compressed), then starts them afresh; the parent adds every
// worker's second into the run's totals and into that second's row of the
// time series.
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from "hdr-histogram-js";

export const HISTOGRAMS = ["connect", "tls", "auth", "login", "relogin", "roster", "message"] as const;
export type HistName = (typeof HISTOGRAMS)[number];

export const COUNTERS = [
  "arrived", // users whose arrival time came
  "connections", // TCP connections opened (redirects open more)
  "connected", // ... that were established
  "tls", // TLS handshakes completed
  "authenticated", // SASL successes
  "logged_in", // bind results (full logins; a login after a redirect counts once)
  "login_failed", // users who never logged in
  "redirects", // <see-other-host/> followed
  "moved", // ... of those, after login (a drain): each is followed by one more login or a resumption
  "reconnects", // sessions lost after login (moved, or the connection cut) that the user connected again for
  "relogins", // logins again after a lost session (not resumed): what a user sees as "logged in again"
  "relogged_users", // users who had to log in again at least once
  "resumed", // lost sessions resumed with XEP-0198
  "resume_failed", // ... refused by the server (the user then logs in again)
  "closed", // users who finished their actions and closed
  "cut", // users still running when the run's duration ran out
  "dropped", // users whose session ended early after login (error or server close)
  "msgs_sent", // chat messages sent to online users
  "msgs_sent_offline", // ... to offline accounts
  "msgs_no_target", // chat turns skipped: nobody else online
  "msgs_received", // stamped messages received live
  "msgs_received_delayed", // stamped messages received with a delay element (offline storage)
  "msgs_delivered", // messages to online users received (live or delayed), each once
  "msgs_duplicated", // copies of a message received again (not in the two above)
  "msgs_earlier_run", // stamped messages sent before this run started: an earlier run's, kept in offline storage (in none above)
  "msgs_bounced", // messages to online users that came back to their sender as errors
  "msgs_resent", // messages sent again after a resumption or a failed one (not in msgs_sent)
  "msgs_unconfirmed", // messages to online users sent without XEP-0198 resumption just before the connection was cut: the sender cannot know whether the server read them
  "msgs_unconfirmed_accounted", // ... of those, delivered or bounced after all
  "rosters", // roster results
  "sm_enabled", // XEP-0198 enabled
  "sm_acks_sent", // <a/> answered to the server's <r/>
  "sm_acks_received", // <a/> received for our <r/>
  "keepalives", // whitespace keepalives sent
  "errors", // every error, by kind in errors
] as const;
export type CounterName = (typeof COUNTERS)[number];
export type Counters = Record<CounterName, number>;

export interface Gauges {
  /** Sockets open. */
  open: number;
  /** Users logged in and not yet gone. */
  sessions: number;
  /** Users available (after initial presence). */
  online: number;
}

/** One worker's report for one second (or the last, partial one). */
export interface TickReport {
  /** The second (0-based since the run's start) this report closes. */
  sec: number;
  counters: Counters;
  gauges: Gauges;
  errors: Record<string, number>;
  redirects: Record<string, number>;
  /** This second's histograms, HDR compressed base64, only those with values. */
  hist: Partial<Record<HistName, string>>;
  /** The worker's memory: RSS and V8 heap in use, bytes. */
  rss: number;
  heap: number;
}

export function zeroCounters(): Counters {
  return Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counters;
}

/** Microseconds, one hour at most (larger values are clamped). */
const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: false });
}

/** The worker side: counters, errors and this second's histograms. */
export class Recorder {
  readonly c: Counters = zeroCounters();
  readonly errors = new Map<string, number>();
  readonly redirects = new Map<string, number>();
  private readonly hist = new Map<HistName, Histogram>();

  count(name: CounterName, n = 1): void {
    this.c[name] += n;
  }

  error(kind: string): void {
    this.c.errors++;
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  redirect(target: string): void {
    this.c.redirects++;
    this.redirects.set(target, (this.redirects.get(target) ?? 0) + 1);
  }

  /** Records a latency in milliseconds (fractional). */
  latency(name: HistName, ms: number): void {
    let h = this.hist.get(name);
    if (!h) this.hist.set(name, (h = newHistogram()));
    h.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(ms * 1000))));
  }

  /** This second's report; the histograms start afresh. */
  tick(sec: number, gauges: Gauges): TickReport {
    const hist: Partial<Record<HistName, string>> = {};
    for (const [name, h] of this.hist) {
      if (h.totalCount > 0) hist[name] = encodeIntoCompressedBase64(h);
      h.reset();
    }
    const mem = process.memoryUsage();
    return {
      sec,
      counters: { ...this.c },
      gauges,
      errors: Object.fromEntries(this.errors),
      redirects: Object.fromEntries(this.redirects),
      hist,
      rss: mem.rss,
      heap: mem.heapUsed,
    };
  }
}

export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  "p99.9": number;
  max: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Percentiles in milliseconds of a histogram in microseconds. */
export function percentiles(h: Histogram): Percentiles {
  if (h.totalCount === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, "p99.9": 0, max: 0 };
  const ms = (us: number) => round3(us / 1000);
  return {
    count: h.totalCount,
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    "p99.9": ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** One second of the run, all workers together. */
export interface SeriesRow {
  /** Seconds since the run's start at the end of this second. */
  t: number;
  sessions: number;
  open: number;
  online: number;
  arrived: number;
  connections: number;
  logins: number;
  redirects: number;
  msgs_sent: number;
  msgs_received: number;
  errors: number;
  /** Per-second latency percentiles, ms (null: no sample that second). */
  connect_p99: number | null;
  login_p50: number | null;
  login_p99: number | null;
  msg_p50: number | null;
  msg_p99: number | null;
  /** The simulator's own memory, all workers, MB. */
  sim_rss_mb: number;
}

interface Pending {
  reports: Map<number, TickReport>;
}

/** The parent side: merges every worker's reports into totals and a time series. */
export class Merger {
  readonly totals = new Map<HistName, Histogram>(HISTOGRAMS.map((n) => [n, newHistogram()]));
  readonly series: SeriesRow[] = [];
  /** Each worker's latest report. */
  readonly latest = new Map<number, TickReport>();
  private readonly pending = new Map<number, Pending>();
  /** Each worker's counters when the last finished row was made. */
  private readonly rowBase = new Map<number, Counters>();
  private readonly finished = new Set<number>();
  private nextRow = 0;
  /** Peak of the sessions gauge and the simulator's RSS at that moment. */
  peak = { sessions: 0, simRss: 0 };

  constructor(private readonly workers: number[]) {}

  /** Adds worker `w`'s report; returns the rows it completed. */
  add(w: number, r: TickReport, final = false): SeriesRow[] {
    for (const [name, b64] of Object.entries(r.hist) as [HistName, string][]) {
      this.totals.get(name)!.add(decodeFromCompressedBase64(b64));
    }
    this.latest.set(w, r);
    let p = this.pending.get(r.sec);
    if (!p) this.pending.set(r.sec, (p = { reports: new Map() }));
    p.reports.set(w, r);
    if (final) this.finished.add(w);
    return this.drain(false);
  }

  /** Marks worker `w` gone (exited): its rows no longer wait for it. */
  gone(w: number): SeriesRow[] {
    this.finished.add(w);
    return this.drain(false);
  }

  /** Makes every row still pending (the run is over). */
  flush(): SeriesRow[] {
    return this.drain(true);
  }

  private drain(all: boolean): SeriesRow[] {
    const out: SeriesRow[] = [];
    const last = Math.max(-1, ...this.pending.keys());
    while (this.nextRow <= last) {
      const sec = this.nextRow;
      const p = this.pending.get(sec);
      if (!all && this.workers.some((w) => !this.finished.has(w) && !p?.reports.has(w))) break;
      this.pending.delete(sec);
      out.push(this.row(sec, p));
      this.nextRow++;
    }
    return out;
  }

  private row(sec: number, p: Pending | undefined): SeriesRow {
    const hist = new Map<HistName, Histogram>();
    const counters = new Map<number, Counters>();
    let sessions = 0;
    let open = 0;
    let online = 0;
    let rss = 0;
    for (const w of this.workers) {
      // A worker without a report for this second (it has finished) counts with its latest.
      const r = p?.reports.get(w) ?? this.latest.get(w);
      if (!r) continue;
      counters.set(w, r.counters);
      if (!p?.reports.has(w)) continue;
      sessions += r.gauges.sessions;
      open += r.gauges.open;
      online += r.gauges.online;
      rss += r.rss;
      for (const [name, b64] of Object.entries(r.hist) as [HistName, string][]) {
        let h = hist.get(name);
        if (!h) hist.set(name, (h = newHistogram()));
        h.add(decodeFromCompressedBase64(b64));
      }
    }
    const delta = (c: CounterName) => {
      let d = 0;
      for (const [w, cs] of counters) d += cs[c] - (this.rowBase.get(w)?.[c] ?? 0);
      return d;
    };
    const q = (name: HistName, pct: number) => {
      const h = hist.get(name);
      return h && h.totalCount ? round3(h.getValueAtPercentile(pct) / 1000) : null;
    };
    const row: SeriesRow = {
      t: sec + 1,
      sessions,
      open,
      online,
      arrived: delta("arrived"),
      connections: delta("connections"),
      logins: delta("logged_in"),
      redirects: delta("redirects"),
      msgs_sent: delta("msgs_sent") + delta("msgs_sent_offline"),
      msgs_received: delta("msgs_received") + delta("msgs_received_delayed"),
      errors: delta("errors"),
      connect_p99: q("connect", 99),
      login_p50: q("login", 50),
      login_p99: q("login", 99),
      msg_p50: q("message", 50),
      msg_p99: q("message", 99),
      sim_rss_mb: Math.round((rss / 1048576) * 10) / 10,
    };
    for (const [w, cs] of counters) this.rowBase.set(w, cs);
    if (sessions >= this.peak.sessions) this.peak = { sessions, simRss: rss };
    this.series.push(row);
    return row;
  }

  /** Every worker's counters added up (their latest reports). */
  counters(): Counters {
    const sum = zeroCounters();
    for (const r of this.latest.values()) for (const c of COUNTERS) sum[c] += r.counters[c];
    return sum;
  }

  errors(): Record<string, number> {
    return sumMaps([...this.latest.values()].map((r) => r.errors));
  }

  redirects(): Record<string, number> {
    return sumMaps([...this.latest.values()].map((r) => r.redirects));
  }

  gauges(): Gauges {
    const g: Gauges = { open: 0, sessions: 0, online: 0 };
    for (const r of this.latest.values()) {
      g.open += r.gauges.open;
      g.sessions += r.gauges.sessions;
      g.online += r.gauges.online;
    }
    return g;
  }
}

function sumMaps(maps: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
