// Messages that wait while the sms settle (protocol §2.2): just after the
// set of sms changed, a message for a user with an account but no session
// here may be for a user whose session is only moving here, its REBUILD on
// the way; it waits for that session rather than going offline.
import { holding, type Work } from "./origin.js";
import type { SmContext } from "./sm-context.js";

export class Settling {
  /** Until when messages for users without a session here wait. */
  private until = 0;
  /** Those waiting, per user, in arrival order. */
  private readonly parked = new Map<string, { job: () => Promise<void>; release: () => void }[]>();

  constructor(
    private readonly ctx: SmContext,
    private readonly settleMs: number,
  ) {}

  /** The sms changed, or a front end came back with its sessions: messages wait from now on for a while. */
  begin(now: number): void {
    this.until = now + this.settleMs;
  }

  /**
   * Whether a message for `user` should wait (park): others wait already, or
   * just after the sms changed the user has no session here but an account,
   * and may only be moving here. Only a message that a client's stanza set
   * going (one that may be a copy sent again after a failover) waits; one
   * for an unknown account is answered at once. Answered at once, without a
   * promise, but when the store must say (while settling): the check runs
   * for every message to a local user.
   */
  mayBeMoving(user: string, work: Work): boolean | Promise<boolean> {
    if (this.parked.has(user)) return true;
    if (Date.now() >= this.until || !work.origin || this.ctx.registry.of(user).length > 0) return false;
    return this.ctx.store.accountExists(user);
  }

  /**
   * Holds a message: it goes on, in order with the others held for that
   * user, once a session of the user is bound or rebuilt here, or when the
   * settling ends; meanwhile it holds its work's tally.
   */
  park(user: string, work: Work, job: () => Promise<void>): void {
    let held = this.parked.get(user);
    if (!held) {
      this.parked.set(user, (held = []));
      setTimeout(() => this.unpark(user), Math.max(0, this.until - Date.now())).unref();
    }
    held.push(holding(work.origin, job));
  }

  /** A session of the user is here now: what waited for it goes on. */
  unpark(user: string): void {
    const held = this.parked.get(user);
    if (!held) return;
    this.parked.delete(user);
    for (const { job } of held) void this.ctx.queue.run(user, job);
  }
}
