// DELIVERs and FORWARDs that carry an identity wait here until their
// receiver says it has them (DELIVERED, FORWARDED; protocol §2.5), holding
// the tally of the client stanza they came from, so that stanza is not
// reported taken before they are. A router that dies with them loses
// nothing: they are sent again after the re-link, and after RESEND_MS
// without an answer from a receiver silent that long. Receivers recognise a
// copy by its identity.
import { SM_ADDRESS, type RoutePort } from "../lib/link/member.js";
import { PeerHearing } from "../lib/link/peer-hearing.js";
import { NumberedDelivers } from "./numbered-delivers.js";
import type { Tally } from "./origin.js";

/** Sent again when not acknowledged within this long, its receiver silent as long. */
const RESEND_MS = 5_000;

export interface Waiting {
  readonly to: string;
  readonly key: string;
  readonly payload: Buffer;
  sentAt: number;
  readonly tally: Tally | null;
}

/** A DELIVER waiting: its session and identity, for the sessions picked and a front end of an earlier version. */
interface WaitingDeliver extends Waiting {
  readonly sid: string;
  readonly origin: string;
}

/**
 * DELIVERs are kept by front end and `num` (protocol §2.5): a front end
 * acknowledges ranges of numbers, mostly one a turn, so acknowledging a
 * delivery costs a lookup by a small integer, never one by session and
 * identity. FORWARDs are kept by identity.
 */
export class Unacknowledged {
  private readonly fronts = new Map<string, NumberedDelivers<WaitingDeliver>>();
  private readonly forwards = new Map<string, Waiting>();
  private readonly hearing = new PeerHearing(RESEND_MS);

  constructor(private readonly port: RoutePort) {}

  get size(): number {
    let n = this.forwards.size;
    for (const front of this.fronts.values()) n += front.size;
    return n;
  }

  /** The `num` of the next DELIVER to front end `c2s`, for its meta; one not sent leaves a gap, which costs nothing. */
  nextNum(c2s: string): number {
    let front = this.fronts.get(c2s);
    // Kept for good, as is its numbering: a front end's name is reused by its next run.
    if (!front) this.fronts.set(c2s, (front = new NumberedDelivers()));
    return front.take();
  }

  /**
   * Sends a DELIVER numbered `num` (from nextNum()) to front end `c2s` and
   * keeps it until acknowledged; false (and not kept) when the link would
   * not carry it. The same identity delivered again is kept beside the
   * first: each is acknowledged by its own number.
   */
  deliver(c2s: string, num: number, sid: string, origin: string, key: string, payload: Buffer, tally: Tally | null): boolean {
    if (!this.port.send(c2s, key, payload)) return false;
    tally?.hold();
    this.fronts.get(c2s)!.add(num, { to: c2s, key, payload, sentAt: Date.now(), tally, sid, origin });
    return true;
  }

  /** Sends a FORWARD to the sm that owns `key` and keeps it until acknowledged; the same identity sent again replaces the one kept, and goes last. */
  forward(origin: string, key: string, payload: Buffer, tally: Tally | null): boolean {
    if (!this.port.send(SM_ADDRESS, key, payload)) return false;
    tally?.hold();
    const old = this.forwards.get(origin);
    this.forwards.delete(origin);
    old?.tally?.release();
    this.forwards.set(origin, { to: SM_ADDRESS, key, payload, sentAt: Date.now(), tally });
    return true;
  }

  /** DELIVERED `nums`: the front end has the DELIVERs in these ranges (from, to, …, inclusive). */
  delivered(c2s: string, ranges: readonly number[]): void {
    const front = this.fronts.get(c2s);
    if (!front) return;
    for (let i = 0; i + 1 < ranges.length; i += 2) front.removeRange(ranges[i]!, ranges[i + 1]!, release);
  }

  /**
   * DELIVERED by session and identity, from a front end of an earlier
   * version, which does not read `num`s: found by looking through what
   * waits for it, only while such a front end runs (a rolling upgrade).
   */
  deliveredAs(c2s: string, sid: string, origin: string): void {
    const front = this.fronts.get(c2s);
    if (!front) return;
    for (const [num, w] of front.entries()) {
      if (w.sid === sid && w.origin === origin) return release(front.remove(num)!);
    }
  }

  /** FORWARDED: the sm has it. */
  forwarded(origin: string): void {
    this.takeForward(origin)?.tally?.release();
  }

  /** Forgets DELIVER `num` to `c2s`, which came back undeliverable: its caller sees to it, and releases its tally. */
  takeDelivery(c2s: string, num: number): Waiting | undefined {
    return this.fronts.get(c2s)?.remove(num);
  }

  /** Forgets a FORWARD that came back undeliverable, as takeDelivery(). */
  takeForward(origin: string): Waiting | undefined {
    const w = this.forwards.get(origin);
    this.forwards.delete(origin);
    return w;
  }

  /** Forgets every DELIVER to front end `c2s` for the sessions `which` picks, for its caller to see to (and release their tallies). */
  takeDelivers(c2s: string, which: (sid: string) => boolean): Waiting[] {
    const front = this.fronts.get(c2s);
    if (!front) return [];
    const taken = [...front.entries()].filter(([, w]) => which(w.sid));
    for (const [num] of taken) front.remove(num);
    return taken.map(([, w]) => w);
  }

  /** A ROUTE frame came from `from`: what waits for it is not sent again while it is heard (protocol §2.5). */
  heard(from: string, now: number): void {
    this.hearing.heard(from, now);
  }

  /**
   * Sends again what waited too long for a receiver silent as long, or, with
   * `which`, every frame it picks (after a re-link: all).
   */
  resend(now: number, which?: (w: Waiting) => boolean): number {
    let n = 0;
    const each = (w: Waiting): void => {
      if (which ? !which(w) : !this.hearing.due(this.receiver(w), w.sentAt, now)) return;
      this.port.send(w.to, w.key, w.payload);
      w.sentAt = now;
      n++;
    };
    for (const front of this.fronts.values()) for (const [, w] of front.entries()) each(w);
    for (const w of this.forwards.values()) each(w);
    return n;
  }

  /** The sm a FORWARD to the role address goes to now; a DELIVER's c2s. */
  private receiver(w: Waiting): string | undefined {
    return w.to === SM_ADDRESS ? this.port.smOwnerOf(w.key) : w.to;
  }
}

function release(w: Waiting): void {
  w.tally?.release();
}
