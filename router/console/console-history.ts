// The console's charts: the farm's sessions, logins/s and messages/s over
// the last hour, sampled from the front ends' load reports (their
// cumulative `logins` and `messages`, protocol §1.6) every few seconds.
import type { StatusEntry } from "../../lib/link/control.js";

export const SAMPLE_MS = 5_000;
/** An hour of samples. */
export const SAMPLES = 3600_000 / SAMPLE_MS;

/** A front end's cumulative counters; absent from one that does not send them (an older version): 0. */
interface Counters {
  logins: number;
  messages: number;
}

export interface History {
  /** Seconds since the epoch, as uPlot takes them. */
  t: number[];
  sessions: number[];
  logins: number[];
  messages: number[];
}

export class ConsoleHistory {
  private readonly h: History = { t: [], sessions: [], logins: [], messages: [] };
  /** Each front end's counters at the last sample, to take rates from. */
  private last = new Map<string, Counters>();
  private lastAt: number | null = null;

  /** Takes a sample of the farm as the router sees it now. */
  sample(entries: readonly StatusEntry[], now = Date.now()): void {
    let sessions = 0;
    let logins = 0;
    let messages = 0;
    const seen = new Map<string, Counters>();
    for (const e of entries) {
      if (e.role !== "c2s" || !e.load) continue;
      sessions += e.load.sessions;
      const counted = { logins: e.load.logins ?? 0, messages: e.load.messages ?? 0 };
      const before = this.last.get(e.name);
      // A counter lower than before is a restarted process's, counting from 0 again.
      if (before) {
        logins += counted.logins >= before.logins ? counted.logins - before.logins : counted.logins;
        messages += counted.messages >= before.messages ? counted.messages - before.messages : counted.messages;
      }
      seen.set(e.name, counted);
    }
    const seconds = this.lastAt === null ? 0 : (now - this.lastAt) / 1000;
    this.last = seen;
    this.lastAt = now;
    const h = this.h;
    h.t.push(Math.round(now / 1000));
    h.sessions.push(sessions);
    h.logins.push(seconds > 0 ? round(logins / seconds) : 0);
    h.messages.push(seconds > 0 ? round(messages / seconds) : 0);
    if (h.t.length > SAMPLES) for (const series of Object.values(h)) series.shift();
  }

  get(): History {
    return this.h;
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
