// The active/passive router pair (protocol §1.9). Each router links to its
// peer as role "router" and learns whether it is active; which one leads is
// arbitrated by a lease in the farm's database (one row, timed by the
// database's clock: xdb-sql), never by the peer link alone, so that a
// partition between the two routers cannot make both active:
// - Only the lease holder turns active. A passive router asks for the lease
//   only when it may take over: its peer link has been down for the election
//   time, or the peer is linked and passive and younger (the elder asks
//   first), or has stayed passive for the election time and a lease.
// - The active router renews the lease every third of its ttl. It stays
//   active while it holds it, or, while the database does not answer, while
//   its peer is linked and passive (that peer does not ask for the lease
//   meanwhile), so that a database outage alone never stops the routing.
// - It steps down when the database says the other holds the lease (both
//   active after a healed partition: the holder leads), or when its lease has
//   lapsed by its own monotonic clock while its peer is not linked; the router
//   checks that before it acts on anything a link sent (a router woken from a
//   pause must not route on: router.ts).
// - A router hands the lease back when it stops, and as it starts (the
//   process it replaces has exited), so its peer need not wait for expiry.
// - Without both the database and the peer link, no router takes over.
import { performance } from "node:perf_hooks";
import type { Logger } from "../lib/log.js";
import { SILENCE_LIMIT_MS } from "../lib/link/control.js";
import { LinkClient } from "../lib/link/link-client.js";
import type { Store } from "../xdb-sql/store.js";
import type { Router } from "./router.js";

/** What the pair needs of the farm's store. */
export type LeaseStore = Pick<Store, "acquireLease" | "releaseLease">;

export interface RouterPairOptions {
  router: Router;
  name: string;
  /** The peer router's link address, "host:port". */
  peer: string;
  secret: string;
  electionMs: number;
  /** How long the lease lasts unless renewed (router.lease). */
  leaseMs: number;
  store: LeaseStore;
  log: Logger;
}

/** How long a stopping router waits for the database to take its lease back. */
const RELEASE_WAIT_MS = 1_000;

export class RouterPair {
  private readonly link: LinkClient;
  /** The router's name, which holds the lease. */
  private readonly holder: string;
  private readonly renewMs: number;
  private renewTimer: NodeJS.Timeout | null = null;
  private election: NodeJS.Timeout | null = null;
  /** The peer's state as it last announced it (WELCOME's, then router-state). */
  private peerActive = false;
  /** When the peer link went down (monotonic ms); null while it is up. */
  private downSince: number | null;
  /** Since when the linked peer has been passive (monotonic ms); null while it is active or unlinked. */
  private peerPassiveSince: number | null = null;
  /** Until when this router holds the lease, on its monotonic clock: when it asked, plus what the database said was left. */
  private heldUntil = 0;
  /** The database's last answer named the other router as the holder. */
  private otherHolds = false;
  /** A request to the database is under way: one at a time, however long the database takes. */
  private asking = false;
  private stopped = false;

  constructor(private readonly opts: RouterPairOptions) {
    this.holder = opts.name;
    this.renewMs = Math.max(1, Math.floor(opts.leaseMs / 3));
    this.downSince = performance.now();
    opts.router.leadCheck = () => this.mayLead();
    this.link = new LinkClient({ name: opts.name, role: "router", secret: opts.secret, routers: [opts.peer], info: {}, log: opts.log });
    this.link.on("up", () => {
      this.cancelElection();
      this.downSince = null;
      this.peerState(this.link.peerActive);
    });
    this.link.on("down", () => {
      this.peerActive = false;
      this.peerPassiveSince = null;
      this.downSince = performance.now();
      this.scheduleElection();
      this.decide();
    });
    // The active peer's member table: awaited after a takeover (router/awaited-members.ts). A passive
    // peer's WELCOME lists no one (it links no component), which must not wipe what an active one said.
    this.link.on("members", (members) => {
      if (this.link.peerActive || this.peerActive) opts.router.rememberMembers(members);
    });
    this.link.on("control", (msg) => {
      if (msg.op === "router-state") this.peerState(msg.active);
      else if (msg.op === "drained") opts.router.takeDrained(msg.fronts);
    });
  }

  /** This router knows its part: it is active, or linked to its peer (which then leads, or will). For /readyz. */
  get settled(): boolean {
    return this.opts.router.active || this.link.connected;
  }

  start(): void {
    this.opts.router.setActive(false);
    // The process this one replaces has exited (a name runs once): a lease it left is handed back, so that the
    // peer need not wait for it to expire. Nothing is asked for until the database has done so, however long it takes.
    this.asking = true;
    void this.release().then(() => {
      this.asking = false;
      this.tick();
    });
    this.scheduleElection();
    this.renewTimer = setInterval(() => this.tick(), this.renewMs);
    this.link.start();
  }

  /** Steps down and hands the lease back, so that the peer takes over without waiting for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelElection();
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.opts.router.setActive(false);
    if (performance.now() < this.heldUntil) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.release(), new Promise((r) => (timer = setTimeout(r, RELEASE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    this.link.stop();
  }

  /** Hands the lease back if this router's name holds it. */
  private release(): Promise<void> {
    return this.opts.store.releaseLease(this.holder).catch((err: unknown) => {
      this.opts.log.warn({ err: (err as Error).message }, "could not hand the router lease back; it expires by itself");
    });
  }

  private peerState(active: boolean): void {
    this.peerActive = active;
    if (active) this.peerPassiveSince = null;
    else this.peerPassiveSince ??= performance.now();
    this.tick();
  }

  /** The peer link is up and has been heard within the silence limit: not a link that a pause left stale. */
  private peerLinked(): boolean {
    return this.link.connected && this.link.silentMs <= SILENCE_LIMIT_MS;
  }

  /** Whether this router, if active, may go on routing. */
  private mayLead(): boolean {
    if (performance.now() < this.heldUntil) return true;
    if (this.otherHolds) return false;
    return this.peerLinked() && !this.peerActive;
  }

  /**
   * Whether this passive router may ask for the lease: its peer link has been
   * down for the election time, or its peer is linked and passive and this
   * router is the elder, or the peer has stayed passive for the election time
   * and a lease (the elder cannot reach the database, say): long enough for
   * the elder to take the lease first, since after a failover
   * the elder is the one with the member table to await (router.ts).
   */
  private mayTakeOver(): boolean {
    const now = performance.now();
    const { electionMs, leaseMs } = this.opts;
    if (this.peerLinked()) return !this.peerActive && (this.elder() || now - (this.peerPassiveSince ?? now) >= electionMs + leaseMs);
    return this.downSince !== null && now - this.downSince >= electionMs;
  }

  /** Of two passive routers, the elder asks first (a restarted active comes back passive, for its peer has the member table); then the lower name. */
  private elder(): boolean {
    const { router, name } = this.opts;
    const peerStarted = this.link.routerStarted;
    return router.started < peerStarted || (router.started === peerStarted && name < this.link.routerName);
  }

  /** Decides on what is known, then asks the database when this router leads or may lead. */
  private tick(): void {
    this.decide();
    if (this.stopped || this.asking || !(this.opts.router.active || this.mayTakeOver())) return;
    this.asking = true;
    const asked = performance.now();
    this.opts.store.acquireLease(this.holder, this.opts.leaseMs).then(
      (lease) => {
        const mine = lease.holder === this.holder && lease.remainingMs > 0;
        // Measured from when it asked: the database's expiry is no earlier than that.
        this.heldUntil = mine ? asked + lease.remainingMs : 0;
        this.otherHolds = !mine && lease.remainingMs > 0;
        this.asking = false;
        this.decide();
      },
      (err: unknown) => {
        // Known already through the store's outage log; what was held lapses by itself.
        this.opts.log.debug({ err: (err as Error).message }, "router lease not renewed");
        this.otherHolds = false;
        this.asking = false;
        this.decide();
      },
    );
  }

  /** What to be, on what is known now. */
  private decide(): void {
    if (this.stopped) return;
    const { router, log } = this.opts;
    if (router.active) {
      if (!this.mayLead()) {
        log.warn({ otherHolds: this.otherHolds, peerLinked: this.peerLinked() }, "router lease lost or lapsed; stepping down");
        router.setActive(false);
      }
    } else if (performance.now() < this.heldUntil && !(this.peerLinked() && this.peerActive)) router.setActive(true);
  }

  private scheduleElection(): void {
    if (this.election) return;
    this.election = setTimeout(() => {
      this.election = null;
      this.tick();
    }, this.opts.electionMs);
  }

  private cancelElection(): void {
    if (this.election) clearTimeout(this.election);
    this.election = null;
  }
}
