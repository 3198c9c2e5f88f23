// Sessions begin and end here: START binds a resource (the new session wins
// a conflict, protocol §2.1), REBUILD re-establishes a session a c2s holds
// without broadcasts (§2.2), and a session ends on END, on conflict, on an
// account's deletion, at shutdown, or when its front end is gone.
import { parseJid, type Jid } from "../lib/jid.js";
import { randomHex } from "../lib/random.js";
import { SessionOp, encodeSessionPayload, type RebuildMeta, type StartMeta } from "../lib/link/session-payload.js";
import { routedAgain } from "../lib/stanza-rules.js";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import { ACCOUNT_DELETED, PASSWORD_CHANGED, type StreamClose } from "./module-api.js";
import { inTurn, type Work } from "./origin.js";
import { ResumeLog } from "./resumption.js";
import { Session } from "./sessions.js";
import type { SessionResumption } from "./session-resumption.js";
import type { SessionStates } from "./session-state.js";
import type { Settling } from "./settling.js";
import { QUEUE_FULL, type SmContext } from "./sm-context.js";
import { parseStanza } from "./stanza-parser.js";
import { priorityOf } from "./stanza.js";
import type { StanzaRouter } from "./stanza-router.js";

export interface LifecycleDeps {
  readonly settling: Settling;
  readonly resumption: SessionResumption;
  readonly router: StanzaRouter;
  readonly states: SessionStates;
  /** Sessions one user may hold at once. */
  readonly maxSessions: number;
}

export class SessionLifecycle {
  constructor(
    private readonly ctx: SmContext,
    private readonly deps: LifecycleDeps,
  ) {}

  /** START: bound in the user's turn; the c2s is answered STARTED or START_FAILED. */
  start(c2s: string, key: string, meta: StartMeta): void {
    // Parsed here, whatever form the c2s sent it in (protocol §2).
    const jid = parseJid(meta.jid);
    const user = jid?.bare ?? key;
    const work = inTurn(user);
    const queued = this.ctx.queue.offer(user, 0, async () => {
      const session = await this.bind(work, c2s, key, meta, jid).catch((err: unknown) => {
        // The c2s waits for an answer: a failing store still gets one.
        const down = err instanceof StoreUnavailableError;
        if (!down) this.ctx.log.error({ err, jid: meta.jid }, "session start failed");
        this.startFailed(c2s, key, meta.sid, down ? "resource-constraint" : "internal-server-error");
        return null;
      });
      if (session) await this.ctx.hooks.fire("session-started", { session, work });
    });
    if (!queued) this.startFailed(c2s, key, meta.sid, "resource-constraint", QUEUE_FULL);
  }

  /** Binds a session and answers STARTED, or answers START_FAILED and returns null. */
  private async bind(work: Work, c2s: string, key: string, meta: StartMeta, jid: Jid | null): Promise<Session | null> {
    const { registry, store, port } = this.ctx;
    const fail = (condition: string, text?: string): null => {
      this.startFailed(c2s, key, meta.sid, condition, text);
      return null;
    };
    if (this.ctx.closed) return fail("service-unavailable", "session manager shutting down");
    if (!jid || !jid.local) return fail("bad-request", "not a user JID");
    const user = jid.bare;
    if (!this.ctx.domains.has(jid.domain) || !(await store.accountExists(user))) {
      return fail("not-authorized");
    }
    const reused = registry.bySid(c2s, meta.sid);
    if (reused) await this.end(work, reused, "sid started again");
    const old = registry.get(jid);
    if (registry.of(user).filter((s) => s !== old).length >= this.deps.maxSessions) {
      return fail("resource-constraint", "too many sessions");
    }
    // Protocol §2.1: the new session wins.
    if (old) await this.end(work, old, "replaced", "conflict");
    const session = new Session(jid.resource ? jid : this.freeResource(jid), c2s, meta.sid, this.ctx.log);
    // 32 bytes in base64: anything else is no voucher a front end would take.
    if (meta.plain?.length === 44) session.plainVoucher = meta.plain;
    registry.add(session);
    this.deps.settling.unpark(session.user);
    port.send(c2s, user, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: session.jid.full }));
    // The c2s logs the login at info ("authenticated"); this line would only repeat it.
    session.log.debug({ c2s, ip: meta.ip, secure: meta.secure }, "session started");
    return session;
  }

  private startFailed(c2s: string, key: string, sid: string, condition: string, text?: string): void {
    const meta = text ? { sid, condition, text } : { sid, condition };
    this.ctx.port.send(c2s, key, encodeSessionPayload(SessionOp.StartFailed, meta));
  }

  /** The user's JID with a resource no session of theirs holds. */
  private freeResource(user: Jid): Jid {
    for (;;) {
      // Hex is a valid resourcepart as it is.
      const jid = user.withResource(randomHex(6))!;
      if (!this.ctx.registry.get(jid)) return jid;
    }
  }

  /** A c2s re-establishes a session it holds (after an sm change or a router outage), without broadcasts. */
  async rebuild(c2s: string, key: string, meta: RebuildMeta, jid: Jid | null, presenceXml: Buffer): Promise<void> {
    const { registry, port } = this.ctx;
    const replaced = meta.replaces && registry.bySid(meta.replaces.c2s, meta.replaces.sid);
    if (replaced && jid && replaced.jid.equals(jid)) {
      // Resumed on another c2s: the same session, reached at its new connection.
      registry.move(replaced, c2s, meta.sid);
      port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: jid.full }));
      replaced.log.info({ c2s, sid: meta.sid }, "session moved with its connection");
      return;
    }
    const existing = registry.bySid(c2s, meta.sid);
    if (existing || !jid?.resource || this.ctx.closed) {
      if (existing) {
        // The c2s may know of stanzas another sm took meanwhile: they are not taken again here.
        if (meta.seq !== undefined && meta.seq > existing.received) existing.received = existing.taken = meta.seq;
        if (meta.resume && !existing.resumption) existing.resumption = new ResumeLog(meta.resume);
        // Its front end was away past the grace (hung) and is back with it: it gets what waited (§2.6).
        else if (meta.resume && existing.resumption?.waiting) this.deps.resumption.reattach(existing, meta.resume.lastN);
        port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: existing.jid.full }));
      }
      return;
    }
    const holder = registry.get(jid);
    if (holder) {
      // A newer login took the resource meanwhile: it keeps it (protocol §2.1).
      port.send(c2s, key, encodeSessionPayload(SessionOp.Close, { sid: meta.sid, condition: "conflict" }));
      return;
    }
    const presence = presenceXml.length > 0 ? parseStanza(presenceXml) : null;
    const session = new Session(jid, c2s, meta.sid, this.ctx.log);
    session.presence = presence;
    session.priority = presence ? priorityOf(presence) : 0;
    session.interested = meta.interested;
    session.received = session.taken = meta.seq ?? 0;
    if (meta.resume) session.resumption = new ResumeLog(meta.resume);
    // Before session-rebuilt fires: the modules find what they set for the session on its old sm.
    this.deps.states.restore(session, meta.state);
    registry.add(session);
    this.deps.settling.unpark(session.user);
    port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: jid.full }));
    session.log.info({ c2s, available: presence !== null }, "session rebuilt");
    await this.ctx.hooks.fire("session-rebuilt", { session, work: inTurn(session.user) });
  }

  /** A c2s reports a session's offline messages up to `confirm` delivered. */
  async written(c2s: string, sid: string, confirm: number): Promise<void> {
    const session = this.ctx.registry.bySid(c2s, sid);
    if (session && Number.isSafeInteger(confirm)) await this.ctx.hooks.fire("delivered", { session, confirm, work: inTurn(session.user) });
  }

  /** Ends a session, as part of `work` (in its user's turn); with a condition, the c2s is told to close the stream (CLOSE). */
  async end(work: Work, session: Session, reason: string, condition?: string, text?: string): Promise<void> {
    if (!this.ctx.registry.has(session)) return;
    this.ctx.registry.remove(session);
    const resumption = session.resumption;
    if (resumption?.waiting) clearTimeout(resumption.waiting);
    // Waiting for a resumption, its front end is gone: what it held is the sm's to route again (§2.6).
    const left = resumption?.waiting ? resumption.takeAll() : [];
    if (condition) {
      const meta = text ? { sid: session.sid, condition, text } : { sid: session.sid, condition };
      this.ctx.port.send(session.c2s, session.user, encodeSessionPayload(SessionOp.Close, meta));
    }
    session.log.info({ reason }, "session ended");
    await this.ctx.hooks.fire("session-ended", { session, work });
    // Under their identities, to the user's other sessions or offline storage, as its front end would have.
    // Presence is state, not replayed; offline messages are still stored.
    const { router } = this.deps;
    for (const { xml, confirm, origin } of left) {
      if (confirm === 0 && routedAgain(xml)) await router.routedNow(xml, session.user, origin, null, session.user);
    }
  }

  /**
   * An account goes (`xfarm user del`, protocol §1.7), in the user's turn, so
   * that no login or stanza of the user's slips in between: each session here
   * ends, its client told why, while the roster still says which contacts to
   * tell it went unavailable; with `remove`, the contacts' subscriptions are
   * then cancelled and the account leaves the store.
   */
  deleteUser(user: string, remove: boolean): Promise<void> {
    const job = (): Promise<void> => (remove ? this.removeAccount(inTurn(user), user) : this.endSessions(inTurn(user), user, ACCOUNT_DELETED));
    // The outcome goes to the caller, which answers the router, rather than to the queue's log.
    return new Promise((resolve, reject) => void this.ctx.queue.run(user, () => job().then(resolve, reject)));
  }

  /** `xfarm user passwd` (protocol §1.7): in the user's turn, each session here ends as a password change ends it. */
  passwordChanged(user: string): Promise<void> {
    return this.ctx.queue.run(user, () => this.endSessions(inTurn(user), user, PASSWORD_CHANGED));
  }

  /** In the user's turn: its sessions here end, then `account-deleted` fires and it leaves the store. */
  async removeAccount(work: Work, user: string): Promise<void> {
    await this.endSessions(work, user, ACCOUNT_DELETED);
    await this.ctx.hooks.fire("account-deleted", { user, work });
    await this.ctx.store.deleteAccount(user);
    this.ctx.log.info({ user }, "account deleted");
  }

  /** In the user's turn: each session of the user held here but `keep` ends, its client's stream closed as `close` says. */
  async endSessions(work: Work, user: string, close: StreamClose, keep?: Session): Promise<void> {
    for (const session of this.ctx.registry.of(user)) if (session !== keep) await this.end(work, session, close.reason, close.condition, close.text);
  }

  /** Ends every session (clients are told to reconnect). */
  endAll(): void {
    for (const session of this.ctx.registry.all()) {
      void this.ctx.queue.run(session.user, () => this.end(inTurn(session.user), session, "shutdown", "system-shutdown"));
    }
  }
}
