// The identity of what one routed frame sets going (protocol §2.5). A
// client stanza is named by its session and seq; each stanza that its
// processing routes takes the next child name, and each delivery the name of
// the work that makes it. The same frame processed again (sent again after
// a failover, on this sm or another) makes the same names in the same
// order, so a recipient that already has a stanza can drop the copy.
import { AsyncLocalStorage } from "node:async_hooks";

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

/** The work running in the current async context. */
export class Origins {
  private readonly als = new AsyncLocalStorage<Origin>();

  current(): Origin | undefined {
    return this.als.getStore();
  }

  run<T>(origin: Origin, work: () => Promise<T>): Promise<T> {
    return this.als.run(origin, work);
  }

  /**
   * `job` run under `origin` (as it is without one), holding the origin's
   * tally from now until it ends; `release` is for a job that will never run
   * (refused by a full queue).
   */
  held(origin: Origin | undefined, job: () => Promise<void>): { job: () => Promise<void>; release: () => void } {
    if (!origin) return { job, release: () => {} };
    origin.tally?.hold();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      origin.tally?.release();
    };
    return { job: () => this.run(origin, job).finally(release), release };
  }
}
