// The member table as the sm reads it: sessions of users another sm now
// owns are handed over silently (their c2s rebuilds them there, protocol
// §2.2); a c2s missing from the table keeps its sessions for a grace
// period (a router restart must not end them, a dead c2s must); a c2s back
// as the same process is sent the sessions held for it (SESSIONS) to end
// the ghosts an END lost with a router left. While a c2s is lost, the other
// front ends (and its next process) are sent its sessions' PLAIN vouchers.
// A lost front end's sessions end a slice a turn: thousands at once would
// hold up every START of their clients coming back.
import { SM_ADDRESS, type Member } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { inTurn } from "./origin.js";
import type { SessionLifecycle } from "./session-lifecycle.js";
import type { SessionResumption } from "./session-resumption.js";
import type { FrontEndVouchers } from "./front-end-vouchers.js";
import type { Session } from "./sessions.js";
import type { Settling } from "./settling.js";
import type { SmContext } from "./sm-context.js";
import type { StanzaRouter } from "./stanza-router.js";

/** Sids one SESSIONS lists at most, so that its meta stays within 64 KiB. */
const SIDS_PER_FRAME = 2_000;
/**
 * Sessions of a lost front end ended in one turn of the event loop, some
 * 25 ms of work (a session's end tells its contacts): 9,500 at once held the
 * sm 1.3 s, with the STARTs of their clients coming back behind it.
 */
const ENDS_PER_TURN = 200;

/** A lost front end's sessions, to end a slice a turn; then what waited for them is routed again. */
interface Ending {
  readonly c2s: string;
  readonly sessions: Session[];
  /** Their sids, and those of its sessions left waiting for a resumption: a restarted front end's new sessions, under the same name, are not these. */
  readonly sids: Set<string>;
  next: number;
}

export interface FrontEndDeps {
  readonly settling: Settling;
  readonly resumption: SessionResumption;
  readonly lifecycle: SessionLifecycle;
  readonly router: StanzaRouter;
  readonly vouchers: FrontEndVouchers;
  /** How long the sessions of a c2s missing from the member table are kept before they end. */
  readonly graceMs: number;
}

export class FrontEndWatch {
  /** c2s names missing from the member table, since when (-Infinity: it restarted, its sessions are gone). */
  private readonly missing = new Map<string, number>();
  private graceTimer: NodeJS.Timeout | null = null;
  /** Lost front ends whose sessions are ending, oldest first, and the sessions among them not ended yet. */
  private readonly ending: Ending[] = [];
  private readonly doomed = new Set<Session>();
  private sliceTimer: NodeJS.Immediate | null = null;
  /** Told when the last slice has been taken (idle() waits for it). */
  private ended: (() => void)[] = [];
  /** The c2s names in the last member table. */
  private linked = new Set<string>();
  /** When each c2s last started: a new value means it restarted and its old sessions are gone. */
  private readonly started = new Map<string, unknown>();
  /** Linked again (maybe to the other router): every c2s of the next member table is sent its session list. */
  private relinked = false;

  constructor(
    private readonly ctx: SmContext,
    private readonly deps: FrontEndDeps,
  ) {}

  /** The member table changed. */
  onMembers(members: Member[]): void {
    const { ctx } = this;
    const c2s = new Set(members.filter((m) => m.role === "c2s").map((m) => m.name));
    const sms = new Set(members.filter((m) => m.role === "sm").map((m) => m.name));
    // Users change sms: their sessions are rebuilt on their new owners within moments.
    if (sms.size !== ctx.sms.size || [...sms].some((n) => !ctx.sms.has(n))) {
      this.deps.settling.begin(Date.now());
      // A FORWARD may have gone to an sm that is gone now: sent again at once, to the users' owners now.
      ctx.unacked.resend(Date.now(), (w) => w.to === SM_ADDRESS);
    }
    ctx.sms = sms;
    ctx.components = new Set(members.filter((m) => m.role === "component").map((m) => m.name));
    const now = Date.now();
    const started = new Map(members.filter((m) => m.role === "c2s").map((m) => [m.name, m.info.started]));
    for (const [name, when] of started) {
      // Back under the same name but restarted: its sessions died with the old process.
      if (this.started.has(name) && this.started.get(name) !== when) this.missing.set(name, -Infinity);
      else if (this.missing.has(name)) {
        this.missing.delete(name);
        this.deps.vouchers.done(name);
        // Back within its grace: what waited for it goes now.
        ctx.unacked.resend(now, (w) => w.to === name);
      }
      // Back, the same process, after it was away: its sessions that ended meanwhile are on their way back
      // (REBUILD), so messages for their users wait for them as after a change of sms.
      if (!this.linked.has(name) && this.started.get(name) === when) {
        this.deps.settling.begin(now);
        this.reconcile(name);
      } else if (this.relinked) this.reconcile(name);
    }
    this.linked = c2s;
    this.relinked = false;
    // Remembered while absent too, so a c2s that comes back restarted is told apart.
    for (const [name, when] of started) this.started.set(name, when);
    for (const session of ctx.registry.all()) {
      const owner = ctx.port.smOwnerOf(session.user);
      if (!c2s.has(session.c2s)) {
        if (!this.missing.has(session.c2s) && !this.doomed.has(session)) this.missing.set(session.c2s, now);
      } else if (owner !== undefined && owner !== ctx.port.name) {
        void ctx.queue.run(session.user, async () => {
          // Waiting for a resumption, it has no front end to rebuild it there: it ends, and what it held goes there.
          if (session.resumption?.waiting) return this.deps.resumption.unresumed(session, "its user moved to another sm");
          ctx.registry.remove(session);
          session.log.info({ owner }, "session handed over to its new sm");
        });
      }
    }
    // Before the sessions of a restarted c2s end (from the next turn on, after the link has written these):
    // their clients are on their way to the front ends now listed.
    for (const name of this.missing.keys()) this.deps.vouchers.send(name, started);
    this.endMissing(now);
    if (this.missing.size > 0 && !this.graceTimer) {
      this.graceTimer = setInterval(() => this.endMissing(Date.now()), 1_000);
      this.graceTimer.unref();
    }
  }

  /** Linked again, maybe to another router: what the old one may have lost is sent again (§2.5). */
  onRelinked(): void {
    // The sessions that ENDs lost with the old router would leave behind are found at the next member table.
    this.relinked = true;
    const resent = this.ctx.unacked.resend(Date.now(), () => true);
    if (resent > 0) this.ctx.log.info({ resent }, "frames not acknowledged before the re-link sent again");
  }

  /** Whether a c2s is missing from the member table. */
  isMissing(c2s: string): boolean {
    return this.missing.has(c2s);
  }

  /** Whether a c2s missing from the member table may still come back with its sessions. */
  inGrace(c2s: string): boolean {
    const since = this.missing.get(c2s);
    return since !== undefined && since !== -Infinity;
  }

  /** Resolves once no lost front end's sessions are left to end (each is then a job on the queue, or done). */
  endsTaken(): Promise<void> {
    if (this.ending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.ended.push(resolve));
  }

  close(): void {
    if (this.graceTimer) clearInterval(this.graceTimer);
    if (this.sliceTimer) clearImmediate(this.sliceTimer);
    this.sliceTimer = null;
    this.ending.length = 0;
    this.doomed.clear();
    for (const resolve of this.ended.splice(0)) resolve();
  }

  /**
   * Sends a c2s that is back (the same process, or after this sm re-linked)
   * the sessions held for it, so that it ENDs those it no longer holds (an
   * END lost with a router): no ghost stays available to its contacts
   * (protocol §2.5). Sessions waiting for a resumption are not its any more.
   */
  private reconcile(c2s: string): void {
    const sids = this.ctx.registry.all().filter((s) => s.c2s === c2s && !s.resumption?.waiting).map((s) => s.sid);
    for (let i = 0; i < sids.length; i += SIDS_PER_FRAME) {
      this.ctx.port.send(c2s, "", encodeSessionPayload(SessionOp.Sessions, { sids: sids.slice(i, i + SIDS_PER_FRAME) }));
    }
  }

  /** The sessions of each c2s missing past its grace (or restarted) are taken, to end from the next turn on. */
  private endMissing(now: number): void {
    for (const [name, since] of this.missing) {
      if (now - since < this.deps.graceMs) continue;
      this.missing.delete(name);
      this.deps.vouchers.done(name);
      const ending: Ending = { c2s: name, sessions: [], sids: new Set(), next: 0 };
      for (const session of this.ctx.registry.all()) {
        if (session.c2s !== name || this.doomed.has(session)) continue;
        ending.sids.add(session.sid);
        // At once, cheaply: a client resuming right away finds its session waiting (§2.6).
        if (session.resumption) this.deps.resumption.detach(session);
        else {
          ending.sessions.push(session);
          this.doomed.add(session);
        }
      }
      this.ending.push(ending);
    }
    if (this.missing.size === 0 && this.graceTimer) {
      clearInterval(this.graceTimer);
      this.graceTimer = null;
    }
    if (this.ending.length > 0) this.sliceTimer ??= setImmediate(() => this.endSlice());
  }

  /** Queues the ends of the next ENDS_PER_TURN sessions; after a front end's last, what waited for it. */
  private endSlice(): void {
    this.sliceTimer = null;
    const { ctx } = this;
    const { lifecycle } = this.deps;
    let budget = ENDS_PER_TURN;
    while (budget > 0 && this.ending.length > 0) {
      const ending = this.ending[0]!;
      while (budget > 0 && ending.next < ending.sessions.length) {
        const session = ending.sessions[ending.next++]!;
        this.doomed.delete(session);
        budget--;
        // Not if its client's new login replaced it meanwhile.
        if (ctx.registry.has(session)) void ctx.queue.run(session.user, () => lifecycle.end(inTurn(session.user), session, "c2s left"));
      }
      if (ending.next < ending.sessions.length) break;
      this.ending.shift();
      this.routeWaiting(ending);
    }
    if (this.ending.length > 0) this.sliceTimer = setImmediate(() => this.endSlice());
    else for (const resolve of this.ended.splice(0)) resolve();
  }

  /**
   * What waited for a lost front end's sessions is routed again, after they
   * ended (the same queues), under its identity; a session waiting to be
   * resumed keeps what was numbered for it (§2.6).
   */
  private routeWaiting({ c2s, sids }: Ending): void {
    const { ctx } = this;
    const { router } = this.deps;
    // Not what waits for a restarted front end's new sessions, under the same name.
    const theirs = (sid: string): boolean => sids.has(sid) || !ctx.registry.bySid(c2s, sid);
    for (const w of ctx.unacked.takeDelivers(c2s, theirs)) {
      const msg = ctx.decode(w.payload, c2s);
      const kept = msg?.op === SessionOp.Deliver && msg.meta.n !== undefined && ctx.registry.bySid(c2s, msg.meta.sid)?.resumption;
      if (msg?.op !== SessionOp.Deliver || msg.meta.confirm !== undefined || kept) {
        w.tally?.release();
        continue;
      }
      const xml = msg.xml;
      void ctx.queue.run(w.key, () => router.routedNow(xml, w.key, msg.meta.origin, w.tally, w.key)).finally(() => w.tally?.release());
    }
  }
}
