// One promise chain per key (a bare JID): store calls are async, and a
// user's stanzas must be processed, and their sends made, in arrival order.
import { AsyncLocalStorage } from "node:async_hooks";

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly running = new AsyncLocalStorage<string>();

  constructor(private readonly onError: (err: unknown, key: string) => void) {}

  /** The key whose job is running in the current async context, if any. */
  current(): string | undefined {
    return this.running.getStore();
  }

  /** Runs job after every job queued before it under the same key. */
  run(key: string, job: () => Promise<void>): Promise<void> {
    const next = (this.tails.get(key) ?? Promise.resolve())
      .then(() => this.running.run(key, job))
      .catch((err: unknown) => this.onError(err, key));
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves once no job is queued or running, including jobs queued meanwhile. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
