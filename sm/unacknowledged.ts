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

export class Unacknowledged {
  private readonly waiting = new Map<string, Waiting>();
  private readonly hearing = new PeerHearing(RESEND_MS);

  constructor(private readonly port: RoutePort) {}

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Sends a frame and keeps it under `id` until acknowledged; false (and
   * not kept) when the link would not carry it. The same id sent again (its
   * work processed again) replaces the one kept.
   */
  send(id: string, to: string, key: string, payload: Buffer, tally: Tally | null): boolean {
    if (!this.port.send(to, key, payload)) return false;
    tally?.hold();
    this.take(id)?.tally?.release();
    this.waiting.set(id, { to, key, payload, sentAt: Date.now(), tally });
    return true;
  }

  /** The receiver has it. */
  acked(id: string): void {
    this.take(id)?.tally?.release();
  }

  /** Forgets a frame that came back undeliverable: its caller sees to it, and releases its tally. */
  take(id: string): Waiting | undefined {
    const waiting = this.waiting.get(id);
    this.waiting.delete(id);
    return waiting;
  }

  /** Forgets every frame `which` picks, for its caller to see to (and release its tally). */
  takeAll(which: (w: Waiting, id: string) => boolean): Waiting[] {
    const taken: Waiting[] = [];
    for (const [id, w] of this.waiting) {
      if (!which(w, id)) continue;
      this.waiting.delete(id);
      taken.push(w);
    }
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
    for (const w of this.waiting.values()) {
      if (which ? !which(w) : !this.hearing.due(this.receiver(w), w.sentAt, now)) continue;
      this.port.send(w.to, w.key, w.payload);
      w.sentAt = now;
      n++;
    }
    return n;
  }

  /** The sm a FORWARD to the role address goes to now; a DELIVER's c2s. */
  private receiver(w: Waiting): string | undefined {
    return w.to === SM_ADDRESS ? this.port.smOwnerOf(w.key) : w.to;
  }
}

/** The key a DELIVER waits under. */
export function deliverId(c2s: string, sid: string, origin: string): string {
  return `d\n${c2s}\n${sid}\n${origin}`;
}

/** The sid of a DELIVER's key (deliverId); undefined for a FORWARD's. */
export function sidOfDeliverId(id: string): string | undefined {
  return id.startsWith("d\n") ? id.split("\n")[2] : undefined;
}

/** The key a FORWARD waits under. */
export function forwardId(origin: string): string {
  return `f\n${origin}`;
}
