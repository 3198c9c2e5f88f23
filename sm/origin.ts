// The identity of what one routed frame sets going (protocol §2.5). A
// client stanza is named by its session and seq; each stanza that its
// processing routes takes the next child name, and each delivery the name of
// the work that makes it. The same frame processed again (sent again after
// a failover, on this sm or another) makes the same names in the same
// order, so a recipient that already has a stanza can drop the copy.
import { AsyncLocalStorage } from "node:async_hooks";
import type { KeyScope } from "./queue.js";

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

/** What the current async context runs: its identity, and the key of the queue job it is (sm/queue.ts). */
interface Running {
  readonly origin: Origin | undefined;
  readonly key: string | undefined;
}

/**
 * The work running in the current async context. It also keeps the queue's
 * running key (KeyScope): one AsyncLocalStorage for both, because each one
 * a process holds costs every promise it makes a propagation.
 */
export class Origins implements KeyScope {
  private readonly als = new AsyncLocalStorage<Running>();

  current(): Origin | undefined {
    return this.als.getStore()?.origin;
  }

  run<T>(origin: Origin, work: () => Promise<T>): Promise<T> {
    return this.als.run({ origin, key: this.als.getStore()?.key }, work);
  }

  key(): string | undefined {
    return this.als.getStore()?.key;
  }

  withKey(key: string, job: () => Promise<void>): Promise<void> {
    return this.als.run({ origin: this.als.getStore()?.origin, key }, job);
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
    return { job: () => settled(this.run(origin, job), release), release };
  }
}
