// `xfarm user del` on a running farm (protocol §1.7): every sm but the
// user's owner ends its sessions of the user first, while the user's roster
// is still there to say whom to tell; then the owner ends its own and
// deletes the account, and its answer is the admin's. An sm that leaves
// is not waited for.
import type { AdminResult, ControlMessage } from "../lib/link/control.js";
import type { Logger } from "../lib/log.js";

/** One deletion under way. */
interface Deletion {
  answer: (result: AdminResult) => void;
  user: string;
  /** The sm that owns the user, asked last, to delete the account. */
  owner: string;
  /** The other sms, until each has ended its sessions of the user (or left). */
  waiting: Set<string>;
  ownerAsked: boolean;
}

const SM_LEFT = { ok: false, error: "the session manager left" };

export class AccountDeletions {
  private readonly deletions = new Map<number, Deletion>();
  private lastId = 0;

  constructor(
    /** Writes a control message to the linked sm `name`; false when it is not linked. */
    private readonly sendToSm: (name: string, msg: ControlMessage) => boolean,
    private readonly log: Logger,
  ) {}

  /** An id no deletion uses: a kick's `delete-account`, whose answers are ignored (answered() finds no deletion). */
  unregisteredId(): number {
    return ++this.lastId;
  }

  /** Deletes `user`, owned by sm `owner`, after `others` (the other linked sms) have ended its sessions. */
  start(user: string, owner: string, others: string[], answer: (result: AdminResult) => void): void {
    const id = ++this.lastId;
    this.deletions.set(id, { answer, user, owner, waiting: new Set(others), ownerAsked: false });
    this.log.info({ user, owner }, "account deletion ordered");
    for (const name of others) this.sendToSm(name, { op: "delete-account", id, user, remove: false });
    this.step(id);
  }

  /** Sm `from` answered deletion `id`. */
  answered(id: number, from: string, outcome: AdminResult): void {
    this.step(id, from, outcome);
  }

  /** An sm left: the deletions that waited for it go on without it. */
  smLeft(name: string): void {
    for (const [id, d] of this.deletions) {
      if (d.waiting.has(name) || (d.ownerAsked && d.owner === name)) this.step(id, name, SM_LEFT);
    }
  }

  /** Deletion `id` moves on: sm `from` answered, or left; the owner is asked once no other sm is waited for. */
  private step(id: number, from?: string, outcome?: AdminResult): void {
    const d = this.deletions.get(id);
    if (!d) return;
    if (d.ownerAsked && from === d.owner) {
      this.deletions.delete(id);
      d.answer(outcome?.ok ? { ok: true } : { ok: false, error: outcome?.error ?? "the session manager failed" });
      return;
    }
    if (from !== undefined) d.waiting.delete(from);
    if (d.ownerAsked || d.waiting.size > 0) return;
    d.ownerAsked = true;
    if (!this.sendToSm(d.owner, { op: "delete-account", id, user: d.user, remove: true })) this.step(id, d.owner, SM_LEFT);
  }
}
