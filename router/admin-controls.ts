// What an admin orders a running farm to do (protocol §1.7), from `xfarm`
// or the admin console: drain and undrain a front end, end a user's
// sessions, announce, delete an account. Only the active router carries
// the orders out; a passive one says to ask the other.
import type net from "node:net";
import type { Logger } from "../lib/log.js";
import type { AdminResult, ControlMessage } from "../lib/link/control.js";
import { FrameType, encodeJsonFrame } from "../lib/link/frames.js";
import { rendezvousOwner, type C2sInfo } from "../lib/link/member.js";
import { AccountDeletions } from "./account-deletions.js";
import { DrainedFronts } from "./drained-fronts.js";
import type { Peer } from "./peer.js";

const PASSIVE: AdminResult = { ok: false, error: "this router is passive; ask the active one" };
const NO_SM: AdminResult = { ok: false, error: "no session manager is linked" };

/** The orders an admin link sends, each answered with `result`. */
export type AdminOrder = Extract<ControlMessage, { op: "drain" | "undrain" | "user-deleted" | "user-password-changed" | "user-delete" }>;

/** What the orders read of the router. */
export interface RouterLinks {
  active(): boolean;
  /** The linked components by name. */
  readonly peers: ReadonlyMap<string, Peer>;
  /** The sms of the member table, awaited ones included. */
  smNames(): readonly string[];
  /** Linked routers of the pair. */
  readonly routerPeers: ReadonlySet<net.Socket>;
}

export class AdminControls {
  private readonly drainedFronts = new DrainedFronts();
  readonly deletions: AccountDeletions;

  constructor(
    private readonly router: RouterLinks,
    private readonly log: Logger,
  ) {
    this.deletions = new AccountDeletions((name, msg) => this.sendToSm(name, msg), log);
  }

  /** An order from an admin link; `reply` answers it while `open()`, the link not closed. */
  order(msg: AdminOrder, reply: (m: ControlMessage) => void, open: () => boolean): void {
    switch (msg.op) {
      case "drain":
        return reply({ op: "result", ...this.drain(msg.name, msg.rate) });
      case "undrain":
        return reply({ op: "result", ...this.undrain(msg.name) });
      case "user-deleted":
      case "user-password-changed":
        this.toEverySm(msg);
        return reply({ op: "result", ok: true });
      case "user-delete":
        return this.deleteUser(msg.user, (r) => {
          if (open()) reply({ op: "result", ...r });
        });
    }
  }

  /** The drained front ends, name → rate. */
  get drained(): ReadonlyMap<string, number> {
    return this.drainedFronts.all;
  }

  /** The active peer router's set of drained front ends (protocol §1.9): a passive router keeps it for its turn. */
  takeDrained(fronts: Record<string, number>): void {
    if (this.router.active()) return;
    this.drainedFronts.replace(fronts);
  }

  /** The active router tells its pair peer every drained front end, at every change and when the peer links. */
  shareDrained(socket?: net.Socket): void {
    if (!this.router.active()) return;
    const frame = encodeJsonFrame(FrameType.Control, { op: "drained", fronts: this.drainedFronts.record() });
    for (const s of socket ? [socket] : this.router.routerPeers) s.write(frame);
  }

  /** `xfarm c2s drain` (protocol §1.7): front end `name` moves its clients to the others, `rate` a second, and stays drained. */
  drain(name: string, rate: number): AdminResult {
    if (!this.router.active()) return PASSIVE;
    const target = this.router.peers.get(name);
    const linked = target?.member.role === "c2s";
    if (!this.drainedFronts.drain(name, rate, linked)) return { ok: false, error: `no front end named "${name}" is linked` };
    if (linked) target.socket.write(encodeJsonFrame(FrameType.Control, { op: "drain", name, rate }));
    this.log.info({ component: name, rate, linked }, "drain ordered");
    this.shareDrained();
    return { ok: true };
  }

  /** `xfarm c2s undrain`: a drained front end takes clients again. */
  undrain(name: string): AdminResult {
    if (!this.router.active()) return PASSIVE;
    const target = this.router.peers.get(name);
    const linked = target?.member.role === "c2s";
    const draining = linked && (target.member.info as unknown as C2sInfo).draining === true;
    if (!this.drainedFronts.undrain(name, linked, draining)) return { ok: false, error: `front end "${name}" is not drained` };
    if (linked) target.socket.write(encodeJsonFrame(FrameType.Control, { op: "undrain", name }));
    this.log.info({ component: name, linked }, "undrain ordered");
    this.shareDrained();
    return { ok: true };
  }

  /** A front end linked: its drain goes on, or an undrain it missed reaches it (router/drained-fronts.ts). */
  keepDrained(peer: Peer): void {
    const name = peer.member.name;
    const info = peer.member.info as unknown as C2sInfo;
    const told = this.drainedFronts.linked(name, info.draining === true, info.drainRate);
    if (told?.op === "undrain") {
      peer.socket.write(encodeJsonFrame(FrameType.Control, { op: "undrain", name }));
      this.log.info({ component: name }, "undrain passed on as it re-linked");
    } else if (told?.adopted) {
      this.log.info({ component: name, rate: told.rate }, "front end linked draining: kept drained");
      this.shareDrained();
    } else if (told) {
      peer.socket.write(encodeJsonFrame(FrameType.Control, { op: "drain", name, rate: told.rate }));
      this.log.info({ component: name, rate: told.rate }, "drained front end linked: drained again");
    }
  }

  /**
   * Ends every session of `user` on every sm, as the first step of a
   * deletion does (its contacts see it go unavailable); the account stays.
   */
  kick(user: string): AdminResult {
    if (!this.router.active()) return PASSIVE;
    // Its own deletion id, never registered: the sms' answers to it are ignored.
    if (this.toEverySm({ op: "delete-account", id: this.deletions.unregisteredId(), user, remove: false }) === 0) return NO_SM;
    this.log.info({ user }, "sessions of the user ended by an admin");
    return { ok: true };
  }

  /** Every sm sends `body` from the domain to each online session it holds (protocol §1.7, `announce`). */
  announce(body: string): AdminResult {
    if (!this.router.active()) return PASSIVE;
    const sms = this.toEverySm({ op: "announce", body });
    if (sms === 0) return NO_SM;
    this.log.info({ sms, length: body.length }, "announcement sent");
    return { ok: true };
  }

  /** `xfarm user del` (router/account-deletions.ts); `answer` gets the owner's answer. */
  deleteUser(user: string, answer: (result: AdminResult) => void): void {
    if (!this.router.active()) return answer(PASSIVE);
    const smNames = this.router.smNames();
    const owner = rendezvousOwner(smNames, user);
    if (owner === undefined) return answer(NO_SM);
    // Linked ones only: an sm awaited after a takeover has no sessions to end yet.
    this.deletions.start(user, owner, smNames.filter((n) => n !== owner && this.router.peers.has(n)), answer);
  }

  /** Writes `msg` to every linked sm; returns how many there are. */
  private toEverySm(msg: ControlMessage): number {
    const frame = encodeJsonFrame(FrameType.Control, msg);
    let n = 0;
    for (const p of this.router.peers.values()) {
      if (p.member.role !== "sm") continue;
      p.socket.write(frame);
      n++;
    }
    return n;
  }

  /** Writes `msg` to sm `name`; false when it is not linked. */
  private sendToSm(name: string, msg: ControlMessage): boolean {
    const peer = this.router.peers.get(name);
    if (peer?.member.role !== "sm") return false;
    peer.socket.write(encodeJsonFrame(FrameType.Control, msg));
    return true;
  }
}
