// A resumable session's XEP-0198 stream state, kept by its sm (protocol
// §2.6) so that the session outlives its front end: every stanza delivered
// to it, numbered, until its client acknowledges it; the counts the client
// will resume with; and, once the front end is gone, the session waits here
// for its client to resume it on another one.
import type { ResumableState } from "../lib/link/session-payload.js";

/** A stanza delivered to the session and not yet acknowledged by its client. */
export interface Logged {
  /** Its DELIVER's `n`. */
  readonly n: number;
  readonly xml: Buffer;
  /** The offline message's store id (protocol §2.4), 0 for any other stanza. */
  readonly confirm: number;
  readonly origin: string | undefined;
}

/** What a client that resumes with a given 'h' got, and what it is sent again. */
export interface Resumption {
  got: Logged[];
  missing: Logged[];
}

export class ResumeLog {
  readonly id: string;
  readonly maxMs: number;
  private readonly maxStanzas: number;
  private readonly maxBytes: number;
  /** Numbered, oldest first. */
  private entries: Logged[] = [];
  private bytes = 0;
  private lastN: number;
  /** The client's count of what it received, at its last acknowledgement that the front end reported. */
  private ackedH: number;
  /** Positions after `ackedH` (counted as the client counts) of stanzas the front end wrote unnumbered. */
  private locals: number[] = [];
  /** The client's count of the stanzas it sent, up to the last one this sm received. */
  inbound: number;
  /** Its front end is gone: the session waits for a resumption until this timer fires. */
  waiting: NodeJS.Timeout | null = null;

  constructor(state: ResumableState) {
    this.id = state.id;
    this.maxMs = state.max * 1000;
    this.maxStanzas = state.stanzas;
    this.maxBytes = state.bytes;
    this.inbound = state.inbound;
    // What the front end wrote before this sm kept the log is accounted for, not sent again from here.
    this.ackedH = state.outbound;
    this.lastN = state.lastN;
  }

  /** Holds more than the client may leave unacknowledged: its front end cuts it off, or it is not resumed. */
  get full(): boolean {
    return this.entries.length > this.maxStanzas || this.bytes > this.maxBytes;
  }

  /** Numbers a stanza delivered to the session and keeps it until acknowledged. */
  add(xml: Buffer, confirm: number, origin: string | undefined): number {
    const n = ++this.lastN;
    this.entries.push({ n, xml, confirm, origin });
    this.bytes += xml.length;
    return n;
  }

  /** The client acknowledged `h` stanzas in all, covering every DELIVER up to `n`. */
  acked(h: number, n: number): void {
    if (h < this.ackedH) return;
    this.ackedH = h;
    let k = 0;
    while (k < this.entries.length && this.entries[k]!.n <= n) this.bytes -= this.entries[k++]!.xml.length;
    this.entries.splice(0, k);
    this.locals = this.locals.filter((at) => at > h);
  }

  /** The front end wrote a stanza with no `n` at client position `at`. */
  local(at: number): void {
    if (at > this.ackedH) this.locals.push(at);
  }

  /** The front end dropped DELIVER `n` as a copy (protocol §2.5): the client never gets it. */
  skipped(n: number): void {
    const at = this.entries.findIndex((e) => e.n === n);
    if (at < 0) return;
    this.bytes -= this.entries[at]!.xml.length;
    this.entries.splice(at, 1);
  }

  /**
   * A client that received `h` stanzas in all resumes: the stanzas it got
   * and the ones it did not, in order; null if `h` is impossible. Positions
   * after the last acknowledgement are the front end's own stanzas, then
   * numbered ones in the order they were sent.
   */
  resumeFrom(h: number): Resumption | null {
    if (!Number.isSafeInteger(h) || h < this.ackedH) return null;
    const received = h - this.ackedH - this.locals.filter((at) => at <= h).length;
    if (received < 0 || received > this.entries.length) return null;
    return { got: this.entries.slice(0, received), missing: this.entries.slice(received) };
  }

  /** Resumed with `h`: what was missing is sent again, counted from there. */
  resumed(h: number, missing: Logged[]): void {
    this.entries = [...missing];
    this.bytes = missing.reduce((sum, e) => sum + e.xml.length, 0);
    this.ackedH = h;
    this.locals = [];
  }

  /** What was numbered after `n`: kept, never written, while the front end was away. */
  after(n: number): Logged[] {
    return this.entries.filter((e) => e.n > n);
  }

  /** Everything kept, for a session that ends unresumed. */
  takeAll(): Logged[] {
    const all = this.entries;
    this.entries = [];
    this.bytes = 0;
    return all;
  }

  /** The highest `n` given. */
  get last(): number {
    return this.lastN;
  }
}
