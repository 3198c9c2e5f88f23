// DELIVERs and FORWARDs that carry an identity wait here until their
// receiver says it has them (DELIVERED, FORWARDED; protocol §2.5), holding
// the tally of the client stanza they came from, so that stanza is not
// reported taken before they are. A router that dies with them loses
// nothing: they are sent again after the re-link, and after RESEND_MS
// without an answer from a receiver silent that long. Receivers recognise a
// copy by its identity.
import { SM_ADDRESS, type RoutePort } from "../lib/link/member.js";
import { PeerHearing } from "../lib/link/peer-hearing.js";
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

/**
 * DELIVERs are kept by front end, then session, then identity (an identity
 * names one delivery within a session only: each recipient's first
 * delivery of a work carries the work's own name), FORWARDs by identity:
 * looked up by the strings the frames carry, never by a key joined from
 * them, for every DELIVER sent and every one acknowledged.
 */
export class Unacknowledged {
  private readonly delivers = new Map<string, Map<string, Map<string, Waiting>>>();
  private readonly forwards = new Map<string, Waiting>();
  private readonly hearing = new PeerHearing(RESEND_MS);

  constructor(private readonly port: RoutePort) {}

  get size(): number {
    let n = this.forwards.size;
    for (const sessions of this.delivers.values()) for (const waiting of sessions.values()) n += waiting.size;
    return n;
  }

  /**
   * Sends a DELIVER to front end `c2s` and keeps it until acknowledged;
   * false (and not kept) when the link would not carry it. The same
   * identity sent again (its work processed again) replaces the one kept.
   */
  deliver(c2s: string, sid: string, origin: string, key: string, payload: Buffer, tally: Tally | null): boolean {
    return this.keep(origin, { to: c2s, key, payload, sentAt: Date.now(), tally }, () => {
      let sessions = this.delivers.get(c2s);
      if (!sessions) this.delivers.set(c2s, (sessions = new Map()));
      let waiting = sessions.get(sid);
      if (!waiting) sessions.set(sid, (waiting = new Map()));
      return waiting;
    });
  }

  /** Sends a FORWARD to the sm that owns `key` and keeps it until acknowledged, as deliver() does. */
  forward(origin: string, key: string, payload: Buffer, tally: Tally | null): boolean {
    return this.keep(origin, { to: SM_ADDRESS, key, payload, sentAt: Date.now(), tally }, () => this.forwards);
  }

  /** DELIVERED: the front end has it. */
  delivered(c2s: string, sid: string, origin: string): void {
    this.takeDelivery(c2s, sid, origin)?.tally?.release();
  }

  /** FORWARDED: the sm has it. */
  forwarded(origin: string): void {
    this.takeForward(origin)?.tally?.release();
  }

  /** Forgets a DELIVER that came back undeliverable: its caller sees to it, and releases its tally. */
  takeDelivery(c2s: string, sid: string, origin: string): Waiting | undefined {
    const sessions = this.delivers.get(c2s);
    const waiting = sessions?.get(sid);
    const w = waiting?.get(origin);
    if (!w) return undefined;
    waiting!.delete(origin);
    if (waiting!.size === 0) {
      sessions!.delete(sid);
      if (sessions!.size === 0) this.delivers.delete(c2s);
    }
    return w;
  }

  /** Forgets a FORWARD that came back undeliverable, as takeDelivery(). */
  takeForward(origin: string): Waiting | undefined {
    const w = this.forwards.get(origin);
    this.forwards.delete(origin);
    return w;
  }

  /** Forgets every DELIVER to front end `c2s` for the sessions `which` picks, for its caller to see to (and release their tallies). */
  takeDelivers(c2s: string, which: (sid: string) => boolean): Waiting[] {
    const sessions = this.delivers.get(c2s);
    if (!sessions) return [];
    const taken: Waiting[] = [];
    for (const [sid, waiting] of sessions) {
      if (!which(sid)) continue;
      sessions.delete(sid);
      taken.push(...waiting.values());
    }
    if (sessions.size === 0) this.delivers.delete(c2s);
    return taken;
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
    for (const sessions of this.delivers.values()) for (const waiting of sessions.values()) for (const w of waiting.values()) each(w);
    for (const w of this.forwards.values()) each(w);
    return n;
  }

  /**
   * Sends `w` and, once the link took it, keeps it under `origin` in the map
   * `into` gives (made only then); one sent again under its identity
   * replaces the one kept, and goes last, as it was sent last.
   */
  private keep(origin: string, w: Waiting, into: () => Map<string, Waiting>): boolean {
    if (!this.port.send(w.to, w.key, w.payload)) return false;
    w.tally?.hold();
    const waiting = into();
    const old = waiting.get(origin);
    waiting.delete(origin);
    old?.tally?.release();
    waiting.set(origin, w);
    return true;
  }

  /** The sm a FORWARD to the role address goes to now; a DELIVER's c2s. */
  private receiver(w: Waiting): string | undefined {
    return w.to === SM_ADDRESS ? this.port.smOwnerOf(w.key) : w.to;
  }
}
