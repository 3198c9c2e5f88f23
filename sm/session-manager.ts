// The session manager core: binds sessions for the c2s processes, turns
// routed frames into hook events (sm/hooks.ts) and routes what the modules
// send. Every feature lives in a module (sm/mod-*.ts).
import { randomBytes } from "node:crypto";
import { clone, parse, type Element } from "ltx";
import { parseJid, type Jid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import { LogThrottle } from "../lib/log-bounds.js";
import { randomHex } from "../lib/random.js";
import { SM_ADDRESS, type Member, type RoutePort } from "../lib/link/member.js";
import {
  SessionOp,
  decodeSessionPayload,
  encodeSessionPayload,
  type DeliverMeta,
  type HandoffMeta,
  type RebuildMeta,
  type ResumeMeta,
  type SessionMessage,
  type StartMeta,
} from "../lib/link/session-payload.js";
import { StoreUnavailableError } from "../xdb-sql/store-errors.js";
import { STORE_LIMITS, type Store } from "../xdb-sql/store.js";
import { Hooks, type HookName, type Kind, type StanzaEvent, type Target } from "./hooks.js";
import type { DiscoTarget, Identity, ModuleApi, SmModule, StoredDelivery } from "./module-api.js";
import { modCarbons } from "./mod-carbons.js";
import { moduleStorage } from "./module-storage.js";
import { modDisco } from "./mod-disco.js";
import { modIq } from "./mod-iq.js";
import { modMam } from "./mod-mam.js";
import { modMessage } from "./mod-message.js";
import { modOffline } from "./mod-offline.js";
import { modPep } from "./mod-pep.js";
import { modPing } from "./mod-ping.js";
import { modPresence } from "./mod-presence.js";
import { modPrivate } from "./mod-private.js";
import { modRoster } from "./mod-roster.js";
import { modVcard } from "./mod-vcard.js";
import { modTime } from "./mod-time.js";
import { modVersion } from "./mod-version.js";
import { DEFAULT_LIMITS, type SmLimits } from "./limits.js";
import { KeyedQueue } from "./queue.js";
import { Origin, Origins, Tally } from "./origin.js";
import { TakenAcks } from "./taken-acks.js";
import { Unacknowledged, deliverId, forwardId } from "./unacknowledged.js";
import { AckBatch } from "../lib/link/ack-batch.js";
import { routedAgain } from "../lib/stanza-rules.js";
import { ResumeLog } from "./resumption.js";
import { Session, SessionRegistry } from "./sessions.js";
import { FrameTooLargeError, IqRequestError, payloadKey, priorityOf } from "./stanza.js";
import { conditionOf, errorReply, isError } from "../lib/stanza-error.js";

export interface SessionManagerOptions {
  name: string;
  domains: string[];
  store: Store;
  port: RoutePort;
  log: Logger;
  /** Sessions one user may hold at once; the next START fails with resource-constraint. */
  maxSessionsPerUser?: number;
  /**
   * How long the sessions of a c2s missing from the member table are kept
   * before they end: a router restart must not end them, a dead c2s must.
   */
  c2sGraceMs?: number;
  /** What one account may store and grow (sm/limits.ts); the documented defaults for what is not given. */
  limits?: Partial<SmLimits>;
  /**
   * How long after the sms change a message for a user without a session
   * here waits for the session's REBUILD (protocol §2.2), rather than going
   * offline while the user is only moving.
   */
  settleMs?: number;
}

const MODULES: SmModule[] = [
  modIq,
  modRoster,
  modPresence,
  modMessage,
  modOffline,
  modCarbons,
  modMam(),
  modDisco,
  modPing,
  modVersion,
  modTime,
  modVcard,
  modPrivate,
  modPep,
];

/** The text of the error that answers a stanza refused by a full queue. */
const QUEUE_FULL = "too many stanzas are waiting for this account; try again later";
/** Malformed session payloads write one log line per this interval; the next line counts the rest. */
const BAD_PAYLOAD_LOG_INTERVAL_MS = 10_000;

/** Origins one FORWARDED names at most, so that its meta stays within 64 KiB. */
const FORWARD_ACKS_PER_FRAME = 500;
/** Identities a resumption hands the front end at most (as many as a c2s remembers), so that its meta stays within 64 KiB. */
const RECENT_ORIGINS = 512;
/** Sids one SESSIONS lists at most, so that its meta stays within 64 KiB. */
const SIDS_PER_FRAME = 2_000;

/** How long request() waits for an answer by default. */
const REQUEST_TIMEOUT_MS = 10_000;

/** An iq sent with request(), waiting for its answer. */
interface PendingRequest {
  /** The request's 'to', which must answer, and its 'from', which the answer must be for. */
  readonly peer: string;
  readonly asker: string;
  readonly resolve: (answer: Element) => void;
  readonly reject: (err: IqRequestError) => void;
  readonly timer: NodeJS.Timeout;
}

const KINDS: ReadonlySet<string> = new Set<Kind>(["message", "presence", "iq"]);

export class SessionManager {
  readonly name: string;
  private readonly domains: ReadonlySet<string>;
  private readonly store: Store;
  private readonly port: RoutePort;
  private readonly log: Logger;
  private readonly maxSessions: number;
  private readonly limits: Readonly<SmLimits>;
  private readonly registry = new SessionRegistry();
  private readonly hooks = new Hooks();
  private readonly disco: Record<DiscoTarget, { features: Set<string>; identities: Identity[] }> = {
    server: { features: new Set(), identities: [] },
    account: { features: new Set(), identities: [] },
  };
  /** The iqs sent with request() that wait for an answer, by id. */
  private readonly requests = new Map<string, PendingRequest>();
  private readonly queue: KeyedQueue;
  private readonly api: ModuleApi;
  private closed = false;
  private readonly c2sGraceMs: number;
  private readonly settleMs: number;
  /** c2s names missing from the member table, since when. */
  private readonly missing = new Map<string, number>();
  private graceTimer: NodeJS.Timeout | null = null;
  /** The c2s names in the last member table. */
  private c2sLinked = new Set<string>();
  /** When each c2s last started: a new value means it restarted and its old sessions are gone. */
  private readonly c2sStarted = new Map<string, unknown>();
  /** Domains of the linked XEP-0114 components, reached through the router. */
  private components = new Set<string>();
  private readonly badPayloads = new LogThrottle(BAD_PAYLOAD_LOG_INTERVAL_MS);
  /** The identity of the work running now (protocol §2.5). */
  private readonly origins = new Origins();
  private readonly acks: TakenAcks;
  /** DELIVERs and FORWARDs waiting for their receiver to have them (§2.5). */
  private readonly unacked: Unacknowledged;
  /** FORWARDED to the sms whose FORWARDs were taken here. */
  private readonly forwardAcks: AckBatch<string[]>;
  /** The linked sms' names: a FORWARD from one of them is acknowledged. */
  private sms = new Set<string>();
  /** Until when messages for users without a session here wait (the sms changed), and those waiting, per user. */
  private settleUntil = 0;
  private readonly parked = new Map<string, { job: () => Promise<void>; release: () => void }[]>();
  private readonly resendTimer: NodeJS.Timeout;
  /** Linked again (maybe to the other router): every c2s of the next member table is sent its session list. */
  private relinked = false;

  constructor(opts: SessionManagerOptions) {
    this.name = opts.name;
    this.domains = new Set(opts.domains.map((d) => d.toLowerCase()));
    this.store = opts.store;
    this.port = opts.port;
    this.log = opts.log;
    this.maxSessions = opts.maxSessionsPerUser ?? 10;
    this.c2sGraceMs = opts.c2sGraceMs ?? 10_000;
    this.settleMs = opts.settleMs ?? 2_000;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.acks = new TakenAcks(this.port);
    this.unacked = new Unacknowledged(this.port);
    this.forwardAcks = new AckBatch<string[]>(FORWARD_ACKS_PER_FRAME, () => [], (sm, origins) => {
      this.port.send(sm, "", encodeSessionPayload(SessionOp.Forwarded, { origins }));
    });
    this.resendTimer = setInterval(() => this.unacked.resend(Date.now()), 1_000);
    this.resendTimer.unref();
    this.queue = new KeyedQueue(
      (err, key) => this.log.error({ err, user: key }, "processing failed"),
      { jobs: this.limits.queueStanzas, bytes: this.limits.queueBytes },
      (user, refused, drained) => {
        if (drained) this.log.info({ user, refused }, "stanzas for an account flowing again after some were refused");
        else this.log.warn({ user, ...this.queue.load(user) }, "too many stanzas waiting for an account; refusing more with resource-constraint");
      },
    );
    this.api = {
      domains: this.domains,
      limits: this.limits,
      store: this.store,
      storage: moduleStorage(this.store),
      sessions: this.registry,
      log: this.log,
      hook: (name, handler, priority) => this.hooks.on(name, handler, priority),
      fire: (name, event) => this.hooks.fire(name, event),
      addFeature: (feature, on = "server") => void this.disco[on].features.add(feature),
      features: (on = "server") => [...this.disco[on].features].sort(),
      addIdentity: (identity, on = "server") => void this.disco[on].identities.push(identity),
      identities: (on = "server") => [...this.disco[on].identities],
      send: (stanza, raw) => this.send(stanza, raw),
      deliver: (session, stanza, raw, stored) => this.deliver(session, stanza, raw, stored),
      reply: (event, stanza) => this.reply(event, stanza),
      error: async (event, condition, text) => {
        if (!isError(event.stanza)) await this.reply(event, errorReply(event.stanza, condition, { text }));
      },
      userExists: async (user) => this.registry.of(user).length > 0 || this.store.accountExists(user),
      components: () => [...this.components].sort(),
      request: (iq, timeoutMs) => this.request(iq, timeoutMs),
      run: (user, job) => this.queue.run(user, job),
      deliveryId: (recipient) => {
        const id = this.origins.current()?.deliveryId(recipient);
        return id !== undefined && Buffer.byteLength(id) <= STORE_LIMITS.origin ? id : undefined;
      },
    };
    for (const mod of MODULES) mod(this.api);
  }

  /** A ROUTE frame arrived: from a c2s (START/STANZA/END) or another sm (FORWARD). */
  onRoute(from: string, key: string, payload: Buffer): void {
    const msg = this.decode(payload, from);
    if (!msg) return;
    switch (msg.op) {
      case SessionOp.Start: {
        // Parsed here, whatever form the c2s sent it in (protocol §2).
        const jid = parseJid(msg.meta.jid);
        const queued = this.queue.offer(jid?.bare ?? key, 0, async () => {
          const session = await this.bind(from, key, msg.meta, jid).catch((err: unknown) => {
            // The c2s waits for an answer: a failing store still gets one.
            const down = err instanceof StoreUnavailableError;
            if (!down) this.log.error({ err, jid: msg.meta.jid }, "session start failed");
            this.startFailed(from, key, msg.meta.sid, down ? "resource-constraint" : "internal-server-error");
            return null;
          });
          if (session) await this.hooks.fire("session-started", { session });
        });
        if (!queued) this.startFailed(from, key, msg.meta.sid, "resource-constraint", QUEUE_FULL);
        return;
      }
      case SessionOp.Stanza: {
        const { sid, seq, h } = msg.meta;
        const session = this.registry.bySid(from, sid);
        if (!session) {
          // Looked up again in the user's turn: a REBUILD that moved the session here (a resumption on
          // another front end, whose client sends at once) may still be queued.
          void this.queue.run(key, async () => {
            const moved = this.registry.bySid(from, sid);
            if (moved) return this.takeStanza(moved, seq, msg.xml, h);
            const owner = this.port.smOwnerOf(key);
            if (owner !== undefined && owner !== this.port.name && !msg.meta.rerouted) {
              // Sent before the sender saw the user move: pass it on, once (protocol §2.2).
              const meta = seq === undefined ? { sid, rerouted: true } : { sid, seq, rerouted: true };
              this.port.send(SM_ADDRESS, key, encodeSessionPayload(SessionOp.Stanza, meta, msg.xml));
              return;
            }
            // Protocol §2.5: the c2s rebuilds the session here and sends again what was not taken.
            if (seq !== undefined) return this.acks.unknown(from, sid);
            // A sender that does not number its stanzas cannot send them again: its client reconnects.
            this.port.send(from, key, encodeSessionPayload(SessionOp.Close, { sid, condition: "internal-server-error" }));
          });
          return;
        }
        this.takeStanza(session, seq, msg.xml, h);
        return;
      }
      case SessionOp.End: {
        const session = this.registry.bySid(from, msg.meta.sid);
        if (session) void this.queue.run(session.user, () => this.end(session, "end"));
        return;
      }
      case SessionOp.Forward: {
        const origin = msg.meta.origin;
        // From another sm, with an identity: it is told once the work is done (and its deliveries acknowledged).
        const tally = origin !== undefined && this.sms.has(from) ? new Tally(() => this.forwardAcks.frame(from).push(origin)) : null;
        this.fromPeer(msg.xml, key, origin, tally);
        tally?.release(); // its own count: the jobs hold it now
        return;
      }
      case SessionOp.Delivered:
        for (const [sid, origins] of Object.entries(msg.meta.got)) for (const origin of origins) this.unacked.acked(deliverId(from, sid, origin));
        return;
      case SessionOp.Forwarded:
        for (const origin of msg.meta.origins) this.unacked.acked(forwardId(origin));
        return;
      case SessionOp.Resumable: {
        const { sid, ...promised } = msg.meta;
        const session = this.registry.bySid(from, sid);
        if (session) session.resumption = new ResumeLog({ ...promised, inbound: 0, outbound: 0, lastN: 0 });
        return;
      }
      case SessionOp.ClientAcked: {
        const log = (sid: string) => this.registry.bySid(from, sid)?.resumption;
        for (const [sid, ats] of Object.entries(msg.meta.local ?? {})) for (const at of ats) log(sid)?.local(at);
        for (const [sid, ns] of Object.entries(msg.meta.skipped ?? {})) for (const n of ns) log(sid)?.skipped(n);
        for (const [sid, [h, n]] of Object.entries(msg.meta.acked ?? {})) log(sid)?.acked(h, n);
        return;
      }
      case SessionOp.Resume: {
        const meta = msg.meta;
        void this.queue.run(key, () => this.resumeHere(from, key, meta));
        return;
      }
      case SessionOp.Rebuild: {
        const meta = msg.meta;
        const jid = parseJid(meta.jid);
        void this.queue.run(jid?.bare ?? key, () => this.rebuild(from, key, meta, jid, msg.xml));
        return;
      }
      case SessionOp.Written: {
        // Looked up in the user's turn: a REBUILD that moved the session here may still be queued.
        const meta = msg.meta;
        void this.queue.run(key, () => this.delivered(from, meta.sid, meta.confirm));
        return;
      }
      default:
        this.log.warn({ op: msg.op, from }, "unexpected session op");
    }
  }

  /** The router could not deliver a frame we sent: nothing it carried is dropped in silence. */
  onUndeliverable(to: string, key: string, payload: Buffer): void {
    const msg = this.decode(payload, to);
    if (!msg) return;
    switch (msg.op) {
      case SessionOp.Deliver: {
        // The c2s is gone, so is the session; its stanza is routed again, now
        // to the user's other sessions, offline storage, or an error; an
        // offline message (confirm) is still stored.
        const session = this.registry.bySid(to, msg.meta.sid);
        const stored = msg.meta.confirm !== undefined;
        const origin = msg.meta.origin;
        // Cut off within its grace (hung, or re-linking): the session stays, and a delivery with an
        // identity keeps waiting, sent again when the front end links, routed if its grace ends (§2.5).
        if (session && origin !== undefined && this.inGrace(to)) return;
        // A resumable session keeps it for its client (§2.6).
        if (session?.resumption && msg.meta.n !== undefined) return;
        const tally = origin === undefined ? null : (this.unacked.take(deliverId(to, msg.meta.sid, origin))?.tally ?? null);
        void this.queue.run(session?.user ?? key, async () => {
          if (session) await this.end(session, "c2s unreachable");
          // Under its identity: the user's other sessions, which had their copy, drop this one.
          if (!stored) await this.underOrigin(origin, () => this.fromPeerNow(msg.xml, session?.jid.full ?? key), tally);
        }).finally(() => tally?.release());
        return;
      }
      case SessionOp.Started: {
        const session = this.registry.bySid(to, msg.meta.sid);
        if (session) void this.queue.run(session.user, () => this.end(session, "c2s unreachable"));
        return;
      }
      case SessionOp.Forward: {
        // No sm is linked to take it; the store is shared, so process it here
        // (offline storage, stored subscription requests, errors).
        const origin = msg.meta.origin;
        const tally = origin === undefined ? null : (this.unacked.take(forwardId(origin))?.tally ?? null);
        this.fromPeer(msg.xml, key, origin, tally);
        tally?.release();
        return;
      }
      default:
        this.log.debug({ op: msg.op, to }, "undeliverable frame for a gone session");
    }
  }

  /**
   * The member table changed. Sessions of users another sm now owns are
   * handed over silently (their c2s rebuilds them there, protocol §2.2);
   * sessions of a c2s missing for longer than the grace period end.
   */
  onMembers(members: Member[]): void {
    const c2s = new Set(members.filter((m) => m.role === "c2s").map((m) => m.name));
    const sms = new Set(members.filter((m) => m.role === "sm").map((m) => m.name));
    // Users change sms: their sessions are rebuilt on their new owners within moments.
    if (sms.size !== this.sms.size || [...sms].some((n) => !this.sms.has(n))) {
      this.settleUntil = Date.now() + this.settleMs;
      // A FORWARD may have gone to an sm that is gone now: sent again at once, to the users' owners now.
      this.unacked.resend(Date.now(), (w) => w.to === SM_ADDRESS);
    }
    this.sms = sms;
    this.components = new Set(members.filter((m) => m.role === "component").map((m) => m.name));
    const now = Date.now();
    const started = new Map(members.filter((m) => m.role === "c2s").map((m) => [m.name, m.info.started]));
    for (const [name, when] of started) {
      // Back under the same name but restarted: its sessions died with the old process.
      if (this.c2sStarted.has(name) && this.c2sStarted.get(name) !== when) this.missing.set(name, -Infinity);
      else if (this.missing.has(name)) {
        this.missing.delete(name);
        // Back within its grace: what waited for it goes now.
        this.unacked.resend(now, (w) => w.to === name);
      }
      // Back, the same process, after it was away: its sessions that ended meanwhile are on their way back
      // (REBUILD), so messages for their users wait for them as after a change of sms.
      if (!this.c2sLinked.has(name) && this.c2sStarted.get(name) === when) {
        this.settleUntil = now + this.settleMs;
        this.reconcile(name);
      } else if (this.relinked) this.reconcile(name);
    }
    this.c2sLinked = c2s;
    this.relinked = false;
    // Remembered while absent too, so a c2s that comes back restarted is told apart.
    for (const [name, when] of started) this.c2sStarted.set(name, when);
    for (const session of this.registry.all()) {
      const owner = this.port.smOwnerOf(session.user);
      if (!c2s.has(session.c2s)) {
        if (!this.missing.has(session.c2s)) this.missing.set(session.c2s, now);
      } else if (owner !== undefined && owner !== this.port.name) {
        void this.queue.run(session.user, async () => {
          // Waiting for a resumption, it has no front end to rebuild it there: it ends, and what it held goes there.
          if (session.resumption?.waiting) return this.unresumed(session, "its user moved to another sm");
          this.registry.remove(session);
          session.log.info({ owner }, "session handed over to its new sm");
        });
      }
    }
    this.endMissing(now);
    if (this.missing.size > 0 && !this.graceTimer) {
      this.graceTimer = setInterval(() => this.endMissing(Date.now()), 1_000);
      this.graceTimer.unref();
    }
  }

  /**
   * Whether a message for `user` should wait (park): others wait already, or
   * just after the sms changed the user has no session here but an account,
   * and may only be moving here, its REBUILD on the way. Only a message that
   * a client's stanza set going (one that may be a copy sent again after a
   * failover) waits; one for an unknown account is answered at once.
   */
  private async mayBeMoving(user: string): Promise<boolean> {
    if (this.parked.has(user)) return true;
    if (Date.now() >= this.settleUntil || !this.origins.current() || this.registry.of(user).length > 0) return false;
    return this.store.accountExists(user);
  }

  /**
   * Holds a message for a user who has no session here while the sms settle
   * after a change (protocol §2.2): it goes on, in order with the others held
   * for that user, once a session of the user is bound or rebuilt here, or
   * when the settling ends; meanwhile it holds its work's tally.
   */
  private park(user: string, job: () => Promise<void>): void {
    let held = this.parked.get(user);
    if (!held) {
      this.parked.set(user, (held = []));
      setTimeout(() => this.unpark(user), Math.max(0, this.settleUntil - Date.now())).unref();
    }
    const origin = this.origins.current();
    held.push(this.origins.held(origin, job));
  }

  private unpark(user: string): void {
    const held = this.parked.get(user);
    if (!held) return;
    this.parked.delete(user);
    for (const { job } of held) void this.queue.run(user, job);
  }

  /** Whether a c2s missing from the member table may still come back with its sessions. */
  private inGrace(c2s: string): boolean {
    const since = this.missing.get(c2s);
    return since !== undefined && since !== -Infinity;
  }

  /**
   * Sends a c2s that is back (the same process, or after this sm re-linked)
   * the sessions held for it, so that it ENDs those it no longer holds (an
   * END lost with a router): no ghost stays available to its contacts
   * (protocol §2.5). Sessions waiting for a resumption are not its any more.
   */
  private reconcile(c2s: string): void {
    const sids = this.registry.all().filter((s) => s.c2s === c2s && !s.resumption?.waiting).map((s) => s.sid);
    for (let i = 0; i < sids.length; i += SIDS_PER_FRAME) {
      this.port.send(c2s, "", encodeSessionPayload(SessionOp.Sessions, { sids: sids.slice(i, i + SIDS_PER_FRAME) }));
    }
  }

  /** Its front end is gone: a resumable session waits for its client to resume it on another (§2.6). */
  private detach(session: Session): void {
    const resumption = session.resumption!;
    if (resumption.waiting) return;
    resumption.waiting = setTimeout(() => void this.queue.run(session.user, () => this.unresumed(session, "resumption window passed")), resumption.maxMs);
    resumption.waiting.unref();
    session.log.info({ c2s: session.c2s, window: resumption.maxMs / 1000 }, "front end gone; session waits to be resumed");
  }

  /** A waiting session's own front end came back with it: what it was not written goes now (§2.6). */
  private reattach(session: Session, lastN: number): void {
    const resumption = session.resumption!;
    clearTimeout(resumption.waiting!);
    resumption.waiting = null;
    for (const { n, xml, confirm, origin } of resumption.after(lastN)) {
      const meta: DeliverMeta = { sid: session.sid, n, ...(confirm > 0 && { confirm }), ...(origin !== undefined && { origin }) };
      const payload = encodeSessionPayload(SessionOp.Deliver, meta, xml);
      if (origin === undefined) this.port.send(session.c2s, session.user, payload);
      else this.unacked.send(deliverId(session.c2s, session.sid, origin), session.c2s, session.user, payload, null);
    }
    session.log.info({ c2s: session.c2s }, "front end back; session no longer waits to be resumed");
  }

  /** A session that waits for a resumption ends (end() routes again what it held). */
  private async unresumed(session: Session, reason: string): Promise<void> {
    if (session.resumption?.waiting) await this.end(session, reason);
  }

  /**
   * A client resumes on front end `c2s` a session whose own front end is
   * gone (§2.6): the session moves there, with the stanzas its client did
   * not get; one whose front end is still linked is handed over by it (§2.3).
   */
  private async resumeHere(c2s: string, key: string, meta: ResumeMeta): Promise<void> {
    const session = this.registry.of(key).find((s) => s.resumption?.id === meta.previd);
    const resumption = session?.resumption;
    const plan = session && resumption && (resumption.waiting || this.missing.has(session.c2s)) ? resumption.resumeFrom(meta.h) : null;
    if (!session || !resumption || !plan) {
      this.port.send(c2s, key, encodeSessionPayload(SessionOp.Handoff, { sid: meta.sid, ok: false }));
      return;
    }
    if (resumption.waiting) clearTimeout(resumption.waiting);
    resumption.waiting = null;
    // What waited for the old connection is in the log, and goes with the session.
    const old = deliverId(session.c2s, session.sid, "");
    for (const w of this.unacked.takeAll((_, id) => id.startsWith(old))) w.tally?.release();
    const oldC2s = session.c2s;
    const oldSid = session.sid;
    this.registry.move(session, c2s, meta.sid);
    resumption.resumed(meta.h, plan.missing);
    const origins = [...plan.got, ...plan.missing].flatMap((e) => (e.origin === undefined ? [] : [e.origin]));
    const handoff: HandoffMeta = {
      sid: meta.sid,
      ok: true,
      moved: true,
      jid: session.jid.full,
      oldSid,
      inbound: resumption.inbound,
      outbound: meta.h + plan.missing.length,
      lengths: plan.missing.map((e) => e.xml.length),
      confirms: plan.missing.map((e) => e.confirm),
      ns: plan.missing.map((e) => e.n),
      lastN: resumption.last,
      presence: session.presence?.toString() ?? null,
      interested: session.interested,
      seq: session.received,
      recent: origins.slice(-RECENT_ORIGINS),
    };
    this.port.send(c2s, key, encodeSessionPayload(SessionOp.Handoff, handoff, Buffer.concat(plan.missing.map((e) => e.xml))));
    this.port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: session.jid.full }));
    session.log.info({ from: oldC2s, resent: plan.missing.length }, "session resumed on another front end after its own was lost");
    const confirmed = Math.max(0, ...plan.got.map((e) => e.confirm));
    if (confirmed > 0) await this.hooks.fire("delivered", { session, confirm: confirmed });
  }

  private endMissing(now: number): void {
    for (const [name, since] of this.missing) {
      if (now - since < this.c2sGraceMs) continue;
      this.missing.delete(name);
      for (const session of this.registry.all()) {
        if (session.c2s !== name) continue;
        if (session.resumption) this.detach(session);
        else void this.queue.run(session.user, () => this.end(session, "c2s left"));
      }
      // What waited for it is routed again, after the sessions ended (the same queues), under its identity;
      // a session waiting to be resumed keeps what was numbered for it (§2.6).
      for (const w of this.unacked.takeAll((w) => w.to === name)) {
        const msg = this.decode(w.payload, name);
        const kept = msg?.op === SessionOp.Deliver && msg.meta.n !== undefined && this.registry.bySid(name, msg.meta.sid)?.resumption;
        if (msg?.op !== SessionOp.Deliver || msg.meta.confirm !== undefined || kept) {
          w.tally?.release();
          continue;
        }
        const xml = msg.xml;
        void this.queue.run(w.key, () => this.underOrigin(msg.meta.origin, () => this.fromPeerNow(xml, w.key), w.tally)).finally(() => w.tally?.release());
      }
    }
    if (this.missing.size === 0 && this.graceTimer) {
      clearInterval(this.graceTimer);
      this.graceTimer = null;
    }
  }

  /** A c2s re-establishes a session it holds (after an sm change or a router outage), without broadcasts. */
  private async rebuild(c2s: string, key: string, meta: RebuildMeta, jid: Jid | null, presenceXml: Buffer): Promise<void> {
    const replaced = meta.replaces && this.registry.bySid(meta.replaces.c2s, meta.replaces.sid);
    if (replaced && jid && replaced.jid.equals(jid)) {
      // Resumed on another c2s: the same session, reached at its new connection.
      this.registry.move(replaced, c2s, meta.sid);
      this.port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: jid.full }));
      replaced.log.info({ c2s, sid: meta.sid }, "session moved with its connection");
      return;
    }
    const existing = this.registry.bySid(c2s, meta.sid);
    if (existing || !jid?.resource || this.closed) {
      if (existing) {
        // The c2s may know of stanzas another sm took meanwhile: they are not taken again here.
        if (meta.seq !== undefined && meta.seq > existing.received) existing.received = existing.taken = meta.seq;
        if (meta.resume && !existing.resumption) existing.resumption = new ResumeLog(meta.resume);
        // Its front end was away past the grace (hung) and is back with it: it gets what waited (§2.6).
        else if (meta.resume && existing.resumption?.waiting) this.reattach(existing, meta.resume.lastN);
        this.port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: existing.jid.full }));
      }
      return;
    }
    const holder = this.registry.get(jid);
    if (holder) {
      // A newer login took the resource meanwhile: it keeps it (protocol §2.1).
      this.port.send(c2s, key, encodeSessionPayload(SessionOp.Close, { sid: meta.sid, condition: "conflict" }));
      return;
    }
    const presence = presenceXml.length > 0 ? this.parseStanza(presenceXml) : null;
    const session = new Session(jid, c2s, meta.sid, this.log);
    session.presence = presence;
    session.priority = presence ? priorityOf(presence) : 0;
    session.interested = meta.interested;
    session.received = session.taken = meta.seq ?? 0;
    if (meta.resume) session.resumption = new ResumeLog(meta.resume);
    this.registry.add(session);
    this.unpark(session.user);
    this.port.send(c2s, key, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: jid.full }));
    session.log.info({ c2s, available: presence !== null }, "session rebuilt");
    await this.hooks.fire("session-rebuilt", { session });
  }

  /** A c2s reports a session's offline messages up to `confirm` delivered. */
  private async delivered(c2s: string, sid: string, confirm: number): Promise<void> {
    const session = this.registry.bySid(c2s, sid);
    if (session && Number.isSafeInteger(confirm)) await this.hooks.fire("delivered", { session, confirm });
  }

  /** Linked again, maybe to another router: what the old one may have lost is sent again (§2.5). */
  onRelinked(): void {
    // The sessions that ENDs lost with the old router would leave behind are found at the next member table.
    this.relinked = true;
    const resent = this.unacked.resend(Date.now(), () => true);
    if (resent > 0) this.log.info({ resent }, "frames not acknowledged before the re-link sent again");
  }

  /**
   * An account goes (`xfarm user del`, protocol §1.7), in the user's turn, so
   * that no login or stanza of the user's slips in between: each session here
   * ends, its client told why, while the roster still says which contacts to
   * tell it went unavailable; with `remove`, the contacts' subscriptions are
   * then cancelled and the account leaves the store.
   */
  deleteUser(user: string, remove: boolean): Promise<void> {
    const job = async (): Promise<void> => {
      for (const session of this.registry.of(user)) await this.end(session, "account deleted", "not-authorized");
      if (!remove) return;
      await this.hooks.fire("account-deleted", { user });
      await this.store.deleteAccount(user);
      this.log.info({ user }, "account deleted");
    };
    // The outcome goes to the caller, which answers the router, rather than to the queue's log.
    return new Promise((resolve, reject) => void this.queue.run(user, () => job().then(resolve, reject)));
  }

  /** Ends every session (clients are told to reconnect) and waits for all processing to finish. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.graceTimer) clearInterval(this.graceTimer);
    clearInterval(this.resendTimer);
    for (const [id, pending] of this.requests) this.settle(id, pending, new IqRequestError("shutdown"));
    for (const session of this.registry.all()) {
      void this.queue.run(session.user, () => this.end(session, "shutdown", "system-shutdown"));
    }
    await this.idle();
  }

  /** Resolves when every queued frame has been processed. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** The session message in a payload; null, with a line now and then, for one a peer got wrong. */
  private decode(payload: Buffer, peer: string): SessionMessage | null {
    try {
      return decodeSessionPayload(payload);
    } catch (err) {
      const unlogged = this.badPayloads.take();
      if (unlogged !== null) this.log.warn({ err: (err as Error).message, peer, unlogged }, "bad session payload dropped");
      return null;
    }
  }

  // ---- sessions

  /** Binds a session and answers STARTED, or answers START_FAILED and returns null. */
  private async bind(c2s: string, key: string, meta: StartMeta, jid: Jid | null): Promise<Session | null> {
    const fail = (condition: string, text?: string): null => {
      this.startFailed(c2s, key, meta.sid, condition, text);
      return null;
    };
    if (this.closed) return fail("service-unavailable", "session manager shutting down");
    if (!jid || !jid.local) return fail("bad-request", "not a user JID");
    const user = jid.bare;
    if (!this.domains.has(jid.domain) || !(await this.store.accountExists(user))) {
      return fail("not-authorized");
    }
    const reused = this.registry.bySid(c2s, meta.sid);
    if (reused) await this.end(reused, "sid started again");
    const old = this.registry.get(jid);
    if (this.registry.of(user).filter((s) => s !== old).length >= this.maxSessions) {
      return fail("resource-constraint", "too many sessions");
    }
    // Protocol §2.1: the new session wins.
    if (old) await this.end(old, "replaced", "conflict");
    const session = new Session(jid.resource ? jid : this.freeResource(jid), c2s, meta.sid, this.log);
    this.registry.add(session);
    this.unpark(session.user);
    this.port.send(c2s, user, encodeSessionPayload(SessionOp.Started, { sid: meta.sid, jid: session.jid.full }));
    // The c2s logs the login at info ("authenticated"); this line would only repeat it.
    session.log.debug({ c2s, ip: meta.ip, secure: meta.secure }, "session started");
    return session;
  }

  private startFailed(c2s: string, key: string, sid: string, condition: string, text?: string): void {
    const meta = text ? { sid, condition, text } : { sid, condition };
    this.port.send(c2s, key, encodeSessionPayload(SessionOp.StartFailed, meta));
  }

  /** The user's JID with a resource no session of theirs holds. */
  private freeResource(user: Jid): Jid {
    for (;;) {
      // Hex is a valid resourcepart as it is.
      const jid = user.withResource(randomHex(6))!;
      if (!this.registry.get(jid)) return jid;
    }
  }

  /** Ends a session; with a condition, the c2s is told to close the stream (CLOSE). */
  private async end(session: Session, reason: string, condition?: string): Promise<void> {
    if (!this.registry.has(session)) return;
    this.registry.remove(session);
    const resumption = session.resumption;
    if (resumption?.waiting) clearTimeout(resumption.waiting);
    // Waiting for a resumption, its front end is gone: what it held is the sm's to route again (§2.6).
    const left = resumption?.waiting ? resumption.takeAll() : [];
    if (condition) {
      this.port.send(
        session.c2s,
        session.user,
        encodeSessionPayload(SessionOp.Close, { sid: session.sid, condition }),
      );
    }
    session.log.info({ reason }, "session ended");
    await this.hooks.fire("session-ended", { session });
    // Under their identities, to the user's other sessions or offline storage, as its front end would have.
    // Presence is state, not replayed; offline messages are still stored.
    for (const { xml, confirm, origin } of left) {
      if (confirm === 0 && routedAgain(xml)) await this.underOrigin(origin, () => this.fromPeerNow(xml, session.user));
    }
  }

  // ---- stanzas

  /**
   * A client's STANZA for a session held here. Numbered (protocol §2.5): one
   * seen before is not processed again (and is acknowledged again if it was
   * taken); one after a gap waits to be sent again with those before it. Its
   * work runs under its identity, and once every job it set going has ended
   * it is taken.
   */
  private takeStanza(session: Session, seq: number | undefined, xml: Buffer, h?: number): void {
    if (seq === undefined) {
      const queued = this.queue.offer(session.user, xml.length, () => this.fromClient(session, xml));
      if (!queued) this.refused(xml, (error) => this.deliver(session, error));
      return;
    }
    if (seq <= session.received) {
      if (seq <= session.taken) this.acks.taken(session.c2s, session.sid, session.taken);
      return;
    }
    if (seq !== session.received + 1) return;
    session.received = seq;
    if (h !== undefined && session.resumption) session.resumption.inbound = h;
    const tally = new Tally(() => {
      if (session.took(seq)) this.acks.taken(session.c2s, session.sid, session.taken);
    });
    const origin = new Origin(`${session.c2s}/${session.sid}/${seq}`, tally);
    const queued = this.queue.offer(session.user, xml.length, () => this.origins.run(origin, () => this.fromClient(session, xml)).finally(() => tally.release()));
    if (queued) return;
    // Answered resource-constraint (or, if it may not be answered, counted in the overflow log): taken too.
    this.refused(xml, (error) => this.deliver(session, error));
    tally.release();
  }

  /** Runs routed work under the identity its frame carried, if any, holding `tally` until it ends. */
  private underOrigin(origin: string | undefined, work: () => Promise<void>, tally: Tally | null = null): Promise<void> {
    if (origin === undefined) return work();
    tally?.hold();
    return this.origins.run(new Origin(origin, tally), work).finally(() => tally?.release());
  }

  private async fromClient(session: Session, xml: Buffer): Promise<void> {
    if (!this.registry.has(session)) return; // ended while this frame waited
    const stanza = this.parseStanza(xml);
    if (!stanza) {
      session.log.warn("unparsable stanza from c2s");
      return this.end(session, "bad stanza", "bad-format");
    }
    if (!KINDS.has(stanza.name)) {
      session.log.warn({ name: stanza.name }, "non-stanza element from c2s");
      return this.end(session, "bad stanza", "unsupported-stanza-type");
    }
    const from = session.jid;
    let raw: Buffer | undefined = xml;
    if (stanza.attrs.from !== from.full) {
      stanza.attrs.from = from.full;
      raw = undefined;
    }
    const selfEvent = { stanza, raw, from, to: from.withoutResource(), origin: session };
    const toAttr: string | undefined = stanza.attrs.to;
    if (!toAttr) return this.outbound(selfEvent, "self");
    // Parsed here, whatever form the c2s sent it in (protocol §2).
    const to = parseJid(toAttr);
    if (!to) return this.api.error(selfEvent, "jid-malformed");
    const event: StanzaEvent = { stanza, raw, from, to, origin: session };
    if (!this.domains.has(to.domain)) return this.toUnserved(event);
    if (!to.local) return this.outbound(event, "host");
    if (to.resource) return this.outbound(event, "full");
    return this.outbound(event, to.bare === session.user ? "self" : "bare");
  }

  /** Outbound processing on the sender's sm, then routing. */
  private async outbound(event: StanzaEvent, target: Target): Promise<void> {
    await this.guarded(event, async () => {
      if (await this.hooks.fire(`pre-${event.stanza.name as Kind}/${target}`, event)) return;
      if (target === "self" || target === "host") await this.inbound(event, target);
      else await this.route({ ...event, origin: undefined });
    });
  }

  /** Inbound processing on the recipient's sm. */
  private async inbound(event: StanzaEvent, target: Target): Promise<void> {
    const { stanza } = event;
    if (stanza.name === "message" && (target === "bare" || target === "full") && (await this.mayBeMoving(event.to.bare))) {
      return this.park(event.to.bare, () => this.guarded(event, () => this.inbound(event, target)));
    }
    const type: string | undefined = stanza.attrs.type;
    if (stanza.name === "iq" && (type === "result" || type === "error") && this.answered(event)) return;
    const request = stanza.name === "iq" && (type === "get" || type === "set") ? type : undefined;
    if (request) {
      const payloads = stanza.getChildElements();
      // RFC 6120 §8.2.3: a get or set carries exactly one payload.
      if (payloads.length !== 1) return this.api.error(event, "bad-request");
      const key = payloadKey(payloads[0]!);
      if (await this.fireTargeted((t) => `iq-${request}/${t}/${key}`, target, event)) return;
    }
    if (await this.fireTargeted((t) => `${stanza.name as Kind}/${t}`, target, event)) return;
    if (request) return this.api.error(event, "service-unavailable");
    this.log.debug({ name: stanza.name, type, to: stanza.attrs.to, target }, "unhandled stanza dropped");
  }

  private async fireTargeted(name: (t: Target) => HookName, target: Target, event: StanzaEvent): Promise<boolean> {
    if (await this.hooks.fire(name(target), event)) return true;
    return target === "self" && this.hooks.fire(name("bare"), event);
  }

  /** A FORWARD from another sm: the stanza is for a user this sm owns. */
  private fromPeer(xml: Buffer, key: string, origin?: string, tally: Tally | null = null): void {
    tally?.hold();
    const queued = this.queue.offer(key, xml.length, () => this.underOrigin(origin, () => this.fromPeerNow(xml), tally).finally(() => tally?.release()));
    if (!queued) {
      // Answered resource-constraint: taken too.
      this.refused(xml, (error) => this.send(error));
      tally?.release();
    }
  }

  /**
   * A stanza that found its recipient's queue full: its sender is answered
   * resource-constraint (never an error, nor an iq result, which get no
   * answer; those are counted in the queue's overflow log).
   */
  private refused(xml: Buffer, answer: (error: Element) => unknown): void {
    const stanza = this.parseStanza(xml);
    if (!stanza || !answerable(stanza)) return;
    void Promise.resolve()
      .then(() => answer(errorReply(stanza, "resource-constraint", { text: QUEUE_FULL })))
      .catch((err: unknown) => this.log.warn({ err }, "refusal not answered"));
  }

  /** Inbound processing of a routed stanza; `defaultTo` stands for a missing 'to' (a self stanza). */
  private async fromPeerNow(xml: Buffer, defaultTo?: string): Promise<void> {
    const stanza = this.parseStanza(xml);
    const to = stanza && parseJid(stanza.attrs.to ?? defaultTo ?? "");
    if (!stanza || !KINDS.has(stanza.name) || !to || !this.domains.has(to.domain)) {
      this.log.warn({ xml: xml.toString("utf8", 0, 200) }, "unroutable stanza dropped");
      return;
    }
    const from = parseJid(stanza.attrs.from ?? "") ?? to.domainJid();
    const event: StanzaEvent = { stanza, raw: xml, from, to, origin: undefined };
    await this.guarded(event, () => this.inbound(event, targetOf(to)));
  }

  /** Routes a stanza a module built or passed on: its addresses are parsed here. */
  private async send(stanza: Element, raw?: Buffer): Promise<void> {
    const to = parseJid(stanza.attrs.to ?? "");
    if (!to) {
      this.log.warn({ name: stanza.name, to: stanza.attrs.to }, "stanza without a valid to not sent");
      return;
    }
    const from = parseJid(stanza.attrs.from ?? "") ?? to.domainJid();
    return this.route({ stanza, raw, from, to, origin: undefined });
  }

  /** Routes a stanza whose 'from' and 'to' the event holds parsed. */
  private async route(event: StanzaEvent): Promise<void> {
    const { stanza, raw, from, to } = event;
    if (!this.domains.has(to.domain)) return this.toUnserved(event);
    const target = targetOf(to);
    // Named whichever way it goes, so that it has the same name when sent again after a failover (§2.5).
    const origin = this.origins.current()?.child();
    // Host stanzas are answered on the sender's behalf, in the sender's order.
    const key = target === "host" ? from.bare : to.bare;
    if (target !== "host") {
      const owner = this.port.smOwnerOf(key);
      if (owner !== undefined && owner !== this.port.name) {
        const payload = encodeSessionPayload(SessionOp.Forward, origin ? { origin: origin.id } : {}, raw ?? stanza.toString());
        if (!origin) this.transmit(SM_ADDRESS, key, payload);
        else if (!this.unacked.send(forwardId(origin.id), SM_ADDRESS, key, payload, origin.tally)) throw new FrameTooLargeError(payload.length);
        return;
      }
    }
    const held = this.origins.held(origin, () => this.guarded(event, () => this.inbound(event, target)));
    // Within the recipient's own job, run at once: waiting on its queue would
    // deadlock, and queueing behind would reorder its sends.
    if (this.queue.current() === key) await held.job();
    else if (!this.queue.offer(key, raw?.length ?? 0, held.job)) {
      held.release();
      if (answerable(stanza)) await this.send(errorReply(stanza, "resource-constraint", { text: QUEUE_FULL }));
    }
  }

  /**
   * Another domain: an external component's, routed to it as XML (protocol
   * §1.8); else, with no s2s yet, messages and iq requests bounce, and
   * presence and iq results have nowhere to go.
   */
  private async toUnserved(event: StanzaEvent): Promise<void> {
    const { name, attrs } = event.stanza;
    if (this.components.has(event.to.domain)) {
      this.transmit(event.to.domain, "", event.raw ?? Buffer.from(event.stanza.toString(), "utf8"));
      return;
    }
    if (name === "presence" || (name === "iq" && attrs.type === "result")) {
      this.log.debug({ name, to: attrs.to }, "stanza for an unserved domain dropped");
      return;
    }
    await this.api.error(event, "remote-server-not-found");
  }

  // ---- iq requests made by modules

  /**
   * Sends an iq get/set from a local bare JID or a served domain and waits
   * for its answer. The answer comes back, like any stanza for that JID, to
   * this sm (the one owning the asker) and is taken in inbound() before any
   * hook sees it; one from another JID than the one asked, or for another
   * asker, is not taken.
   */
  private request(iq: Element, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Element> {
    const type: string | undefined = iq.attrs.type;
    const from = parseJid(iq.attrs.from ?? "");
    const to = parseJid(iq.attrs.to ?? "");
    if (iq.name !== "iq" || (type !== "get" && type !== "set") || !from || from.resource || !to || !this.domains.has(from.domain)) {
      return Promise.reject(new Error("request() takes an iq get or set from a served bare JID or domain, with a 'to'"));
    }
    if (this.closed) return Promise.reject(new IqRequestError("shutdown"));
    const stanza = clone(iq);
    const id: string = (stanza.attrs.id ||= `${this.name}-${randomBytes(9).toString("base64url")}`);
    if (this.requests.has(id)) return Promise.reject(new Error(`an iq with id ${id} is already waiting`));
    return new Promise<Element>((resolve, reject) => {
      const pending: PendingRequest = {
        peer: to.full,
        asker: from.full,
        resolve,
        reject,
        timer: setTimeout(() => this.settle(id, pending, new IqRequestError("timeout")), timeoutMs).unref(),
      };
      this.requests.set(id, pending);
      this.send(stanza).catch((err: unknown) => {
        this.log.warn({ err, to: to.full }, "request not sent");
        this.settle(id, pending, new IqRequestError("internal-server-error"));
      });
    });
  }

  /** Whether an iq result or error answers a request(); if so, settles it. */
  private answered(event: StanzaEvent): boolean {
    const { stanza } = event;
    const id: string = stanza.attrs.id ?? "";
    const pending = this.requests.get(id);
    if (!pending || event.from.full !== pending.peer || event.to.full !== pending.asker) return false;
    const failed = isError(stanza) ? new IqRequestError(conditionOf(stanza) ?? "undefined-condition", stanza) : null;
    this.settle(id, pending, failed ?? stanza);
    return true;
  }

  /** Ends a request with its answer or failure; once, whatever comes after. */
  private settle(id: string, pending: PendingRequest, outcome: Element | IqRequestError): void {
    if (this.requests.get(id) !== pending) return;
    this.requests.delete(id);
    clearTimeout(pending.timer);
    if (outcome instanceof IqRequestError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  private deliver(session: Session, stanza: Element, raw?: Buffer, stored?: StoredDelivery): void {
    // An offline message needs no identity: it stays stored until the c2s reports it written.
    const origin = stored ? undefined : this.origins.current()?.deliveryId(session);
    const xml = raw ?? Buffer.from(stanza.toString(), "utf8");
    // A resumable session's deliveries are kept until its client acknowledges them (§2.6).
    const resumption = session.resumption;
    const n = resumption?.add(xml, stored?.confirm ?? 0, origin);
    if (resumption?.waiting) {
      // Its front end is gone: kept for the client's resumption, which sends it.
      if (resumption.full) void this.queue.run(session.user, () => this.unresumed(session, "too much waiting for its client"));
      return;
    }
    const meta: DeliverMeta = stored ? { sid: session.sid, confirm: stored.confirm, ...(stored.last && { last: true }) } : { sid: session.sid };
    if (origin !== undefined) meta.origin = origin;
    if (n !== undefined) meta.n = n;
    const payload = encodeSessionPayload(SessionOp.Deliver, meta, xml);
    if (origin === undefined) return this.transmit(session.c2s, session.user, payload);
    const id = deliverId(session.c2s, session.sid, origin);
    if (!this.unacked.send(id, session.c2s, session.user, payload, this.origins.current()!.tally)) throw new FrameTooLargeError(payload.length);
  }

  /** Sends a frame that carries a stanza; throws FrameTooLargeError when the link would not carry it. */
  private transmit(to: string, key: string, payload: Buffer): void {
    if (!this.port.send(to, key, payload)) throw new FrameTooLargeError(payload.length);
  }

  private async reply(event: StanzaEvent, stanza: Element): Promise<void> {
    if (event.origin && this.registry.has(event.origin)) this.deliver(event.origin, stanza);
    else await this.send(stanza);
  }

  /** A handler that throws costs the sender an internal-server-error, never the farm. */
  private async guarded(event: StanzaEvent, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        // Logged once per outage by the store's availability callback; the sender may try later.
        await this.api.error(event, "resource-constraint");
        return;
      }
      if (err instanceof FrameTooLargeError) {
        const max = this.limits.stanzaBytes;
        this.log.warn({ name: event.stanza.name, from: event.from.full, to: event.to.full, bytes: err.bytes, max }, "answer too large for a link frame; answered resource-constraint");
        await this.api.error(event, "resource-constraint", `the answer (${err.bytes} bytes) is larger than this server sends at once (${max} bytes)`);
        return;
      }
      this.log.error({ err, name: event.stanza.name, from: event.from.full, to: event.to.full }, "stanza failed");
      await this.api.error(event, "internal-server-error");
    }
  }

  private parseStanza(xml: Buffer): Element | null {
    try {
      return parse(xml.toString("utf8"));
    } catch {
      return null;
    }
  }
}

/** Whether a stanza may be answered with an error: not an error itself, nor an iq result (RFC 6120 §8.3.1, §8.2.3). */
function answerable(stanza: Element): boolean {
  return !isError(stanza) && !(stanza.name === "iq" && stanza.attrs.type === "result");
}

function targetOf(to: Jid): Target {
  if (!to.local) return "host";
  return to.resource ? "full" : "bare";
}
