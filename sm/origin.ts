// The identity of what one routed frame sets going (protocol §2.5). A
// client stanza is named by its session and seq; each stanza that its
// processing routes takes the next child name, and each delivery the name of
// the work that makes it. The same frame processed again (sent again after
// a failover, on this sm or another) makes the same names in the same
// order, so a recipient that already has a stanza can drop the copy.

/** `done` once `work` settles, whichever way, as .finally() does: with one promise where .finally() makes three, on every stanza's path. */
export function settled<T>(work: Promise<T>, done: () => void): Promise<T> {
  return work.then(
    (value) => {
      done();
      return value;
    },
    (err: unknown) => {
      done();
      throw err;
    },
  );
}

/** Counts the jobs a client's stanza set going; when the last one ends, the stanza has been taken. */
export class Tally {
  private open = 1;

  constructor(private readonly done: () => void) {}

  hold(): void {
    this.open++;
  }

  release(): void {
    if (--this.open === 0) this.done();
  }
}

export class Origin {
  private sends = 0;
  /** Deliveries made under this name, per recipient (a session, or an account's offline store). */
  private made: Map<unknown, number> | null = null;

  constructor(
    readonly id: string,
    /** The client stanza's tally, when the work began with one. */
    readonly tally: Tally | null,
  ) {}

  /** The name of the next stanza this work routes. */
  child(): Origin {
    return new Origin(`${this.id}.${this.sends++}`, this.tally);
  }

  /** The name of a delivery to `recipient`: the work's own for the first, so that a copy routed again matches it. */
  deliveryId(recipient: unknown): string {
    const n = this.made?.get(recipient) ?? 0;
    (this.made ??= new Map()).set(recipient, n + 1);
    return n === 0 ? this.id : `${this.id}#${n}`;
  }
}

/**
 * What a piece of the sm's work is, handed along explicitly (a hook event's
 * `work`, an api call's first argument) rather than kept in the async
 * context: node's AsyncLocalStorage costs every promise the process makes a
 * hook call, some 10 µs of a chat message (docs/bench.md).
 */
export interface Work {
  /** The identity its sends and deliveries are named from (§2.5); none for the sm's own work (a login, a timer). */
  readonly origin: Origin | undefined;
  /** The user whose queue job (sm/queue.ts) runs it; none outside any job. */
  readonly key: string | undefined;
}

/** Work outside any queue job and without an identity: a timer's, a shutdown's. */
export const UNNAMED: Work = { origin: undefined, key: undefined };

/** The sm's own work in `user`'s queue job, without an identity. */
export function inTurn(user: string): Work {
  return { origin: undefined, key: user };
}

/**
 * `job`, holding the origin's tally from now until it ends; `release` is for
 * a job that will never run (refused by a full queue).
 */
export function holding(origin: Origin | undefined, job: () => Promise<void>): { job: () => Promise<void>; release: () => void } {
  const tally = origin?.tally;
  if (!tally) return { job, release: () => {} };
  tally.hold();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    tally.release();
  };
  return { job: () => settled(job(), release), release };
}
