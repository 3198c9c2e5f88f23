// The session manager: binds sessions for the c2s processes, turns routed
// frames into hook events (sm/hooks.ts) and routes what the modules send.
// Every feature lives in a module (sm/mod-*.ts). This class ties the parts
// that do the work and is the face sm/main.ts and the tests use: the link
// adapter (frames in), the session lifecycle and the front-end watch, the
// stanza router with client delivery, iq requests, and the module loader.
import { Element } from "ltx";
import type { Logger } from "../lib/log.js";
import { flatAckReaders, type Member, type RoutePort } from "../lib/link/member.js";
import { SCRAM_ITERATIONS } from "../lib/sasl/scram-credentials.js";
import type { Store } from "../xdb-sql/store.js";
import { ClientDelivery } from "./client-delivery.js";
import { FrontEndVouchers } from "./front-end-vouchers.js";
import { FrontEndWatch } from "./front-end-watch.js";
import { IqRequests } from "./iq-requests.js";
import { LinkAdapter } from "./link-adapter.js";
import type { SmLimits } from "./limits.js";
import { NO_MODULE_SETTINGS, enabledModules, type EnabledModule } from "./module-config.js";
import { loadModules } from "./module-loader.js";
import { MODULES } from "./modules.js";
import { inTurn } from "./origin.js";
import { SessionLifecycle } from "./session-lifecycle.js";
import { SessionResumption } from "./session-resumption.js";
import { SessionStates } from "./session-state.js";
import { Settling } from "./settling.js";
import { SmContext } from "./sm-context.js";
import { StanzaRouter } from "./stanza-router.js";

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
  /** The modules to run, with their options (sm/module-config.ts); every module (sm/modules.ts) as it is by default, unless given. */
  modules?: readonly EnabledModule[];
  /** PBKDF2 iterations of the SCRAM keys a module derives (c2s.scram_iterations); SCRAM_ITERATIONS unless given. */
  scramIterations?: number;
}

export class SessionManager {
  readonly name: string;
  private readonly ctx: SmContext;
  private readonly link: LinkAdapter;
  private readonly lifecycle: SessionLifecycle;
  private readonly frontEnds: FrontEndWatch;
  private readonly requests: IqRequests;
  private readonly delivery: ClientDelivery;
  private announcements = 0;
  private readonly resendTimer: NodeJS.Timeout;

  constructor(opts: SessionManagerOptions) {
    this.name = opts.name;
    const ctx = (this.ctx = new SmContext(opts));
    const states = new SessionStates(ctx);
    const settling = new Settling(ctx, opts.settleMs ?? 2_000);
    // The parts call each other back through these closures: each is made once all are.
    const resumption = new SessionResumption(ctx, {
      end: (session, reason) => lifecycle.end(inTurn(session.user), session, reason),
      frontEndMissing: (c2s) => frontEnds.isMissing(c2s),
    });
    const delivery = (this.delivery = new ClientDelivery(
      ctx,
      resumption,
      (work, stanza) => router.send(work, stanza),
      // A job of its own in the user's turn, after the one that released it, as a session's end routes what it held.
      (xml, user, origin) => ctx.queue.run(user, () => router.routedNow(xml, user, origin, null, user)),
    ));
    const requests = (this.requests = new IqRequests(ctx, (work, stanza) => router.send(work, stanza)));
    const router: StanzaRouter = new StanzaRouter(ctx, {
      settling,
      requests,
      delivery,
      end: (work, session, reason, condition) => lifecycle.end(work, session, reason, condition),
    });
    const lifecycle: SessionLifecycle = (this.lifecycle = new SessionLifecycle(ctx, {
      settling,
      resumption,
      router,
      states,
      maxSessions: opts.maxSessionsPerUser ?? 10,
    }));
    const frontEnds: FrontEndWatch = (this.frontEnds = new FrontEndWatch(ctx, {
      settling,
      resumption,
      lifecycle,
      router,
      vouchers: new FrontEndVouchers(ctx),
      graceMs: opts.c2sGraceMs ?? 10_000,
    }));
    this.link = new LinkAdapter(ctx, { lifecycle, resumption, router, frontEnds });
    this.resendTimer = setInterval(() => ctx.unacked.resend(Date.now()), 1_000);
    this.resendTimer.unref();
    const scramIterations = opts.scramIterations ?? SCRAM_ITERATIONS;
    loadModules(ctx, { router, delivery, requests, states, lifecycle, scramIterations }, opts.modules ?? enabledModules(MODULES, NO_MODULE_SETTINGS));
  }

  /** A ROUTE frame arrived: from a c2s (START/STANZA/END) or another sm (FORWARD). */
  onRoute(from: string, key: string, payload: Buffer): void {
    this.ctx.unacked.heard(from, Date.now());
    this.link.onRoute(from, key, payload);
  }

  /** The router could not deliver a frame we sent: nothing it carried is dropped in silence. */
  onUndeliverable(to: string, key: string, payload: Buffer): void {
    this.link.onUndeliverable(to, key, payload);
  }

  /**
   * The member table changed. Sessions of users another sm now owns are
   * handed over silently (their c2s rebuilds them there, protocol §2.2);
   * sessions of a c2s missing for longer than the grace period end.
   */
  onMembers(members: Member[]): void {
    this.ctx.acks.flatReaders = flatAckReaders(members);
    this.frontEnds.onMembers(members);
  }

  /** Linked again, maybe to another router: what the old one may have lost is sent again (§2.5). */
  onRelinked(): void {
    this.frontEnds.onRelinked();
  }

  /**
   * An account goes (`xfarm user del`, protocol §1.7): its sessions end, and
   * with `remove` the account leaves the store.
   */
  deleteUser(user: string, remove: boolean): Promise<void> {
    return this.lifecycle.deleteUser(user, remove);
  }

  /** `xfarm user passwd` (protocol §1.7): the account's sessions here end with `reset`, to log in again. */
  passwordChanged(user: string): Promise<void> {
    return this.lifecycle.passwordChanged(user);
  }

  /**
   * An admin's announcement (protocol §1.7, the console): a headline message
   * from the domain to every session held here, each in its user's turn, as
   * Prosody's mod_announce sends one to every online user.
   */
  announce(body: string): void {
    const id = `announce-${++this.announcements}`;
    for (const session of this.ctx.registry.all()) {
      const message = new Element("message", { type: "headline", from: session.jid.domain, to: session.jid.full, id });
      message.c("body").t(body);
      void this.ctx.queue.run(session.user, async () => {
        if (this.ctx.registry.has(session)) this.delivery.deliver(inTurn(session.user), session, message);
      });
    }
  }

  /** Ends every session (clients are told to reconnect) and waits for all processing to finish. */
  async close(): Promise<void> {
    this.ctx.closed = true;
    this.frontEnds.close();
    clearInterval(this.resendTimer);
    this.requests.close();
    this.lifecycle.endAll();
    await this.idle();
  }

  /** What its load report tells besides the process's figures: the sessions held here, the messages routed. */
  load(): { sessions: number; messages: number } {
    return { sessions: this.ctx.registry.size, messages: this.ctx.messagesRouted };
  }

  /** Resolves when every queued frame has been processed, and every lost front end's sessions have ended. */
  async idle(): Promise<void> {
    await this.frontEnds.endsTaken();
    await this.ctx.queue.idle();
  }
}
