// How fast a client may send: a token bucket per connection for bytes and
// one for top-level elements. A client over its rate is slowed first — its
// socket stops being read until it is back under, so TCP holds the rest on
// its side — and cut off only if it stays over for long. Buckets live in a
// map, and only while a client is using them: a full bucket is the same as
// none, so an idle connection holds nothing here. One timer, running only
// while some client is paused, resumes them all (no timer per socket).

export interface RateConfig {
  /** Bytes a second a client may send, on average. */
  bytesPerSecond: number;
  /** Top-level elements (stanzas, SASL and XEP-0198 elements) a second. */
  stanzasPerSecond: number;
  /** Seconds of either rate a client may send at once. */
  burstSeconds: number;
  /** Seconds a client may stay over its rate before it is cut off; 0: never. */
  cutoffSeconds: number;
}

/** What the throttle does to a connection. */
export interface Throttled {
  /** Stop reading the socket: the client is over its rate. */
  pauseReading(): void;
  /** Read again, unless something else holds the socket. */
  resumeReading(): void;
  /** Over its rate for longer than the cutoff. */
  overRate(): void;
}

interface Bucket {
  bytes: number;
  stanzas: number;
  /** When the tokens were last brought up to date. */
  at: number;
  /** When the client first went over its rate without refilling its bucket since; 0: it has not. */
  overSince: number;
}

const RESUME_TICK_MS = 50;

export class ReadThrottle<C extends Throttled = Throttled> {
  private readonly buckets = new Map<C, Bucket>();
  /** Paused clients and when they may be read again. */
  private readonly paused = new Map<C, number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly burstBytes: number;
  private readonly burstStanzas: number;

  constructor(
    private readonly cfg: RateConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.burstBytes = cfg.bytesPerSecond * cfg.burstSeconds;
    this.burstStanzas = cfg.stanzasPerSecond * cfg.burstSeconds;
  }

  /** Counts what a client just sent; pauses it if that took it over its rate. */
  charge(conn: C, bytes: number, stanzas: number): void {
    const now = this.now();
    let b = this.buckets.get(conn);
    if (!b) {
      b = { bytes: this.burstBytes, stanzas: this.burstStanzas, at: now, overSince: 0 };
      this.buckets.set(conn, b);
    } else this.refill(b, now);
    b.bytes -= bytes;
    b.stanzas -= stanzas;
    if (b.bytes >= 0 && b.stanzas >= 0) return;
    if (b.overSince === 0) b.overSince = now;
    else if (this.cfg.cutoffSeconds > 0 && now - b.overSince > this.cfg.cutoffSeconds * 1000) {
      this.forget(conn);
      conn.overRate();
      return;
    }
    // Read again once both buckets are back to zero.
    const wait = Math.max(-b.bytes / this.cfg.bytesPerSecond, -b.stanzas / this.cfg.stanzasPerSecond, 0) * 1000;
    if (!this.paused.has(conn)) conn.pauseReading();
    this.paused.set(conn, now + wait);
    this.timer ??= setInterval(() => this.resumeDue(), RESUME_TICK_MS).unref();
  }

  /** Whether the throttle is what keeps this client's socket paused. */
  holds(conn: C): boolean {
    return this.paused.has(conn);
  }

  /** Clients being read slowly now: for tests and metrics. */
  get pausedCount(): number {
    return this.paused.size;
  }

  /** The connection is gone. */
  forget(conn: C): void {
    this.buckets.delete(conn);
    this.paused.delete(conn);
  }

  /** Drops the buckets that have filled up again: those clients are idle, and hold nothing here. */
  sweep(): void {
    const now = this.now();
    for (const [conn, b] of this.buckets) {
      if (this.paused.has(conn)) continue;
      this.refill(b, now);
      if (b.bytes >= this.burstBytes && b.stanzas >= this.burstStanzas) this.buckets.delete(conn);
    }
  }

  private refill(b: Bucket, now: number): void {
    const seconds = (now - b.at) / 1000;
    if (seconds <= 0) return;
    b.bytes = Math.min(this.burstBytes, b.bytes + seconds * this.cfg.bytesPerSecond);
    b.stanzas = Math.min(this.burstStanzas, b.stanzas + seconds * this.cfg.stanzasPerSecond);
    b.at = now;
    // A full bucket means the client stopped pushing: its time over the rate starts again.
    if (b.bytes >= this.burstBytes && b.stanzas >= this.burstStanzas) b.overSince = 0;
  }

  private resumeDue(): void {
    const now = this.now();
    for (const [conn, at] of this.paused) {
      if (at > now) continue;
      this.paused.delete(conn);
      conn.resumeReading();
    }
    if (this.paused.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Stops the timer (process shutdown). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
