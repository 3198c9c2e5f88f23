// What a bound session keeps of its traffic with the sm (protocol §2.5):
// the client's stanzas the sm has not taken yet, numbered so that sending
// them again after a failover costs no duplicate, and the identities of the
// stanzas delivered lately, so that one sent again reaches the client once.
// Allocated at bind; an idle session's holds counters, nulls, and the
// identities of its login's answers for a while.

/** A client stanza sent to the sm and not yet taken. */
export interface PendingStanza {
  readonly seq: number;
  readonly xml: string;
  readonly bytes: number;
  /** Its routing key (protocol §2): the recipient's bare JID, or domain, or the sender's bare JID when it has no 'to'. */
  readonly to: string;
  /** The client's count of stanzas up to and including this one (its XEP-0198 'h'). */
  readonly h: number;
  /** Made by the front end (a presence broadcast again), not sent by the client. */
  readonly own?: boolean;
}

/** How long a delivered stanza's identity is remembered: longer than any failover resends after it. */
const RECENT_MS = 120_000;
/** At most this many identities per session; beyond, the oldest is forgotten. */
const MAX_RECENT = 512;
/**
 * Up to this many identities are kept in one array, searched in turn, and
 * past it in a Map. Memory: every session holds a few (an idle one, its
 * login's answers for 2 minutes), and an array of them costs some 100 bytes
 * where a Map cost some 300; a busy session's lookups stay O(1).
 */
const SMALL_RECENT = 8;

export class SmPipe {
  /** The last seq given to a STANZA. */
  seq = 0;
  /** Sent and not taken, oldest first. */
  private queue: PendingStanza[] | null = null;
  /** UTF-8 bytes of the queue, held against c2s.max_pending_bytes. */
  bytes = 0;
  /** When the oldest pending stanza was last sent. */
  sentAt = 0;
  /**
   * Identities of stanzas delivered lately, oldest first, with when: up to
   * SMALL_RECENT as pairs in one array ([id, at, id, at, …]), more in a Map.
   */
  private recent: (string | number)[] | RecentMap | null = null;

  get pending(): readonly PendingStanza[] {
    return this.queue ?? [];
  }

  /** Numbers a stanza and keeps it until taken. */
  add(xml: string, bytes: number, h: number, to: string, now: number, own = false): PendingStanza {
    const entry: PendingStanza = own ? { seq: ++this.seq, xml, bytes, h, to, own } : { seq: ++this.seq, xml, bytes, h, to };
    if (!this.queue) {
      this.queue = [];
      this.sentAt = now;
    }
    this.queue.push(entry);
    this.bytes += bytes;
    return entry;
  }

  /** Takes back a stanza another front end had pending (a resumption there). */
  requeue(entry: PendingStanza, now: number): void {
    (this.queue ??= []).push(entry);
    this.bytes += entry.bytes;
    this.sentAt = now;
  }

  /** The sm took every stanza up to `seq`; true if that released any. */
  taken(seq: number, now: number): boolean {
    const queue = this.queue;
    if (!queue || queue[0]!.seq > seq) return false;
    let n = 0;
    while (n < queue.length && queue[n]!.seq <= seq) this.bytes -= queue[n++]!.bytes;
    queue.splice(0, n);
    if (queue.length === 0) {
      this.queue = null;
      this.bytes = 0;
    } else this.sentAt = now;
    return true;
  }

  /** The highest seq every stanza up to which was taken. */
  get takenSeq(): number {
    return this.queue ? this.queue[0]!.seq - 1 : this.seq;
  }

  /**
   * The XEP-0198 'h' the client may be told: every stanza it sent up to the
   * first one the sm has not taken; `inbound` when nothing waits.
   */
  safeH(inbound: number): number {
    return this.queue ? this.queue[0]!.h - 1 : inbound;
  }

  /** Whether a stanza of this identity was delivered lately; if not, it is remembered now. */
  seen(origin: string, now: number): boolean {
    const recent = this.recent;
    if (recent instanceof RecentMap) return recent.seen(origin, now);
    let at = -1;
    if (recent) for (let i = 0; i < recent.length; i += 2) if (recent[i] === origin) at = i;
    if (at >= 0 && now - (recent![at + 1] as number) < RECENT_MS) return true;
    // A new array of exactly the pairs still fresh (a grown one would keep its slack), this one last.
    let fresh = 0;
    if (recent) for (let i = 0; i < recent.length; i += 2) if (i !== at && now - (recent[i + 1] as number) < RECENT_MS) fresh++;
    const next: (string | number)[] = new Array((fresh + 1) * 2);
    let n = 0;
    if (recent) {
      for (let i = 0; i < recent.length; i += 2) {
        if (i === at || now - (recent[i + 1] as number) >= RECENT_MS) continue;
        next[n++] = recent[i]!;
        next[n++] = recent[i + 1]!;
      }
    }
    next[n++] = origin;
    next[n] = now;
    this.recent = fresh + 1 <= SMALL_RECENT ? next : new RecentMap(next);
    return false;
  }

  /** The identities remembered, oldest first, for a front end that takes the session over. */
  recentOrigins(now: number): string[] {
    const recent = this.recent;
    if (!recent) return [];
    if (recent instanceof RecentMap) return recent.fresh(now);
    const ids: string[] = [];
    for (let i = 0; i < recent.length; i += 2) if (now - (recent[i + 1] as number) < RECENT_MS) ids.push(recent[i] as string);
    return ids;
  }

  /** Remembers identities another front end delivered (a resumption there). */
  remember(origins: readonly string[], now: number): void {
    for (const id of origins) this.seen(id, now);
  }
}

/** SmPipe's identities for a session that had more than SMALL_RECENT: a Map, oldest first. */
class RecentMap {
  private readonly ids = new Map<string, number>();
  /** No identity was remembered before this: nothing is forgotten until it is RECENT_MS old (so most calls walk nothing). */
  private oldest: number;

  /** From the array's pairs ([id, at, …], oldest first). */
  constructor(pairs: readonly (string | number)[]) {
    for (let i = 0; i < pairs.length; i += 2) this.ids.set(pairs[i] as string, pairs[i + 1] as number);
    this.oldest = pairs[1] as number;
  }

  /** The identities still remembered at `now`, oldest first (SmPipe.recentOrigins). */
  fresh(now: number): string[] {
    return [...this.ids].filter(([, when]) => now - when < RECENT_MS).map(([id]) => id);
  }

  /** SmPipe.seen. */
  seen(origin: string, now: number): boolean {
    const ids = this.ids;
    const at = ids.get(origin);
    if (at !== undefined && now - at < RECENT_MS) return true;
    // An expired one is deleted first, so that the map stays oldest first.
    if (at !== undefined) ids.delete(origin);
    ids.set(origin, now);
    if (ids.size <= MAX_RECENT && now - this.oldest < RECENT_MS) return false;
    // Oldest first (insertion order): forget what is too old, and beyond the cap.
    for (const [id, when] of ids) {
      if (ids.size <= MAX_RECENT && now - when < RECENT_MS) {
        this.oldest = when;
        break;
      }
      ids.delete(id);
    }
    return false;
  }
}
