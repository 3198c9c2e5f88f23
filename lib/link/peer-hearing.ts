// When a frame kept until acknowledged is sent again on a timer (protocol
// §2.5): only once its receiver has been silent. A receiver that keeps
// sending ROUTE frames is alive and reading its link, which loses nothing;
// copies would only lengthen the backlog it is working through, and under
// overload multiply the frames of every message. Re-links and departures
// send again at once, elsewhere, whatever this says.

/** However busy its receiver, a frame waiting this long is sent again: one it dropped (it came out of order, say) comes back. */
const MAX_DEFER_MS = 30_000;

export class PeerHearing {
  /** When a ROUTE frame last came from each peer, by name. */
  private readonly heardAt = new Map<string, number>();

  constructor(private readonly resendMs: number) {}

  /** A ROUTE frame came from `from`. */
  heard(from: string, now: number): void {
    this.heardAt.set(from, now);
  }

  /** Whether a frame last sent at `sentAt` to `peer` (undefined: no peer known) is to be sent again at `now`. */
  due(peer: string | undefined, sentAt: number, now: number): boolean {
    const waited = now - sentAt;
    if (waited < this.resendMs) return false;
    if (waited >= MAX_DEFER_MS || peer === undefined) return true;
    const heard = this.heardAt.get(peer);
    return heard === undefined || now - heard >= this.resendMs;
  }
}
