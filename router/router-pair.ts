// The active/passive router pair (protocol §1.9): each router links to its
// peer as role "router" and learns whether it is active. A router starts
// passive; it becomes active when its peer has been unreachable for the
// election time, or when both are passive and it is the elder (then the
// lower name). If both find themselves active (a healed partition), the
// younger steps down and lets its components go to the other.
import type { Logger } from "../lib/log.js";
import { LinkClient } from "../lib/link/link-client.js";
import type { Router } from "./router.js";

export interface RouterPairOptions {
  router: Router;
  name: string;
  /** The peer router's link address, "host:port". */
  peer: string;
  secret: string;
  electionMs: number;
  log: Logger;
}

export class RouterPair {
  private readonly link: LinkClient;
  private election: NodeJS.Timeout | null = null;
  /** The peer's state as it last announced it (WELCOME's is the link's `peerActive`). */
  private peerActive = false;

  constructor(private readonly opts: RouterPairOptions) {
    this.link = new LinkClient({ name: opts.name, role: "router", secret: opts.secret, routers: [opts.peer], info: {}, log: opts.log });
    this.link.on("up", () => {
      this.cancelElection();
      this.decide(this.link.peerActive);
    });
    this.link.on("down", () => {
      this.peerActive = false;
      this.scheduleElection();
    });
    // The active peer's member table: awaited after a takeover (router/awaited-members.ts). A passive
    // peer's WELCOME lists no one (it links no component), which must not wipe what an active one said.
    this.link.on("members", (members) => {
      if (this.link.peerActive || this.peerActive) opts.router.rememberMembers(members);
    });
    this.link.on("control", (msg) => {
      if (msg.op === "router-state") {
        this.peerActive = msg.active;
        this.decide(msg.active);
      }
      else if (msg.op === "drained") opts.router.takeDrained(msg.fronts);
    });
  }

  start(): void {
    this.opts.router.setActive(false);
    this.scheduleElection();
    this.link.start();
  }

  stop(): void {
    this.cancelElection();
    this.link.stop();
  }

  /** What to be, knowing whether the linked peer is active. */
  private decide(peerActive: boolean): void {
    const { router, name } = this.opts;
    // Of two routers in the same state, the elder leads (a restarted active comes back passive); then the lower name.
    const peerStarted = this.link.routerStarted;
    const leads = router.started < peerStarted || (router.started === peerStarted && name < this.link.routerName);
    if (peerActive && router.active && !leads) router.setActive(false);
    else if (!peerActive && !router.active && leads) router.setActive(true);
  }

  private scheduleElection(): void {
    if (this.election) return;
    this.election = setTimeout(() => {
      this.election = null;
      if (!this.link.connected) this.opts.router.setActive(true);
    }, this.opts.electionMs);
  }

  private cancelElection(): void {
    if (this.election) clearTimeout(this.election);
    this.election = null;
  }
}
