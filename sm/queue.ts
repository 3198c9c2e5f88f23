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

interface Load {
  jobs: number;
  bytes: number;
  /** Offers refused since the key last had nothing waiting. */
  refused: number;
}

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly loads = new Map<string, Load>();

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
    const load = this.loads.get(key) ?? { jobs: 0, bytes: 0, refused: 0 };
    this.loads.set(key, load);
    load.jobs++;
    load.bytes += bytes;
    const done = (): void => {
      load.jobs--;
      load.bytes -= bytes;
      if (this.tails.get(key) !== next) return;
      this.tails.delete(key);
      this.loads.delete(key);
      if (load.refused > 0) this.onOverflow(key, load.refused, true);
    };
    // Two links a job, one to run it and one to end it.
    const next: Promise<void> = (this.tails.get(key) ?? Promise.resolve())
      .then(job)
      .then(done, (err: unknown) => {
        this.onError(err, key);
        done();
      });
    this.tails.set(key, next);
    return next;
  }

  /**
   * Runs job like run(), unless the key already holds its bound of jobs or
   * bytes: then nothing is queued and null returned, for the caller to
   * answer the job's sender.
   */
  offer(key: string, bytes: number, job: () => Promise<void>): Promise<void> | null {
    const load = this.loads.get(key);
    if (load && (load.jobs >= this.bounds.jobs || load.bytes + bytes > this.bounds.bytes)) {
      if (++load.refused === 1) this.onOverflow(key, 1, false);
      return null;
    }
    return this.run(key, job, bytes);
  }

  /** Jobs and bytes waiting or running under a key. */
  load(key: string): { jobs: number; bytes: number } {
    const load = this.loads.get(key);
    return { jobs: load?.jobs ?? 0, bytes: load?.bytes ?? 0 };
  }

  /** Resolves once no job is queued or running, including jobs queued meanwhile. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
