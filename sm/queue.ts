// One promise chain per key (a bare JID): store calls are async, and a
// user's stanzas must be processed, and their sends made, in arrival order.
// Each key's chain is bounded: a stanza offered to a key that already has
// too many stanzas or bytes waiting is refused, for its sender to be
// answered, so one account's flood costs neither the sm's memory nor the
// other accounts, whose chains run beside it.

export interface QueueBounds {
  /** Jobs waiting or running under one key before offer() refuses more. */
  jobs: number;
  /** Bytes those jobs carry. */
  bytes: number;
}

/**
 * What a key has queued. A key's state stays in the table after its last
 * job, to be swept with others later: a long-lived Map that gains and loses
 * an entry for every stanza is rebuilt by V8 every few dozen, and the
 * tables it leaves in the old generation keep the young jobs they held
 * alive until a full collection (docs/bench.md, "DELIVERED by number").
 */
interface KeyState {
  /** The last job's promise; null when nothing is queued or running. */
  tail: Promise<void> | null;
  jobs: number;
  bytes: number;
  /** Offers refused since the key last had nothing waiting. */
  refused: number;
}

/** Keys without jobs kept at most before they are swept out of the table together. */
const IDLE_KEPT = 4096;

export class KeyedQueue {
  private readonly keys = new Map<string, KeyState>();
  /** Keys in the table with nothing queued or running. */
  private idleKeys = 0;

  constructor(
    private readonly onError: (err: unknown, key: string) => void,
    private readonly bounds: QueueBounds = { jobs: Infinity, bytes: Infinity },
    /** Told when a key starts refusing (refused = 1) and when it has drained after refusing. */
    private readonly onOverflow: (key: string, refused: number, drained: boolean) => void = () => {},
  ) {}

  /**
   * Runs job after every job queued before it under the same key, whatever
   * waits there: for the sm's own work (session ends, rebuilds, answers).
   */
  run(key: string, job: () => Promise<void>, bytes = 0): Promise<void> {
    const found = this.keys.get(key);
    if (found?.tail === null) this.idleKeys--;
    const load = found ?? { tail: null, jobs: 0, bytes: 0, refused: 0 };
    if (!found) this.keys.set(key, load);
    load.jobs++;
    load.bytes += bytes;
    const done = (): void => {
      load.jobs--;
      load.bytes -= bytes;
      if (load.tail !== next) return;
      load.tail = null;
      if (load.refused > 0) this.onOverflow(key, load.refused, true);
      load.refused = 0;
      if (++this.idleKeys > IDLE_KEPT) this.sweep();
    };
    // Two links a job, one to run it and one to end it.
    const next: Promise<void> = (load.tail ?? Promise.resolve())
      .then(job)
      .then(done, (err: unknown) => {
        this.onError(err, key);
        done();
      });
    load.tail = next;
    return next;
  }

  /**
   * Runs job like run(), unless the key already holds its bound of jobs or
   * bytes: then nothing is queued and null returned, for the caller to
   * answer the job's sender.
   */
  offer(key: string, bytes: number, job: () => Promise<void>): Promise<void> | null {
    const load = this.keys.get(key);
    if (load && (load.jobs >= this.bounds.jobs || load.bytes + bytes > this.bounds.bytes)) {
      if (++load.refused === 1) this.onOverflow(key, 1, false);
      return null;
    }
    return this.run(key, job, bytes);
  }

  /** Jobs and bytes waiting or running under a key. */
  load(key: string): { jobs: number; bytes: number } {
    const load = this.keys.get(key);
    return { jobs: load?.jobs ?? 0, bytes: load?.bytes ?? 0 };
  }

  /** Resolves once no job is queued or running, including jobs queued meanwhile. */
  async idle(): Promise<void> {
    for (;;) {
      const tails: Promise<void>[] = [];
      for (const state of this.keys.values()) if (state.tail) tails.push(state.tail);
      if (tails.length === 0) return;
      await Promise.all(tails);
    }
  }

  /** Keys with nothing queued leave the table, all at once. */
  private sweep(): void {
    for (const [key, state] of this.keys) if (state.tail === null) this.keys.delete(key);
    this.idleKeys = 0;
  }
}
