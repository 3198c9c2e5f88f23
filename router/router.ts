// The router: authenticates component links, keeps the member table and
// shares it, and forwards ROUTE frames by their header alone — it never
// reads a routed payload (docs/architecture.md, "Links").
import net from "node:net";
import type { Logger } from "../lib/log.js";
import { listenFailure } from "../lib/process-lifecycle.js";
import { LINK_VERSION, linkProof, newNonce, type HelloBody } from "../lib/link/auth.js";
import { LOADS_INTERVAL_MS, PING_INTERVAL_MS, SILENCE_LIMIT_MS, parseControl, type AdminResult, type ControlMessage, type StatusEntry } from "../lib/link/control.js";
import { batched } from "../lib/link/batch.js";
import { DEFAULT_HIGH_WATER } from "../lib/link/link-client.js";
import { DEFAULT_MAX_FRAME, FrameReader, FrameType, decodeRouteHeader, encodeJsonFrame, type Frame } from "../lib/link/frames.js";
import type { Element } from "ltx";
import { SM_ADDRESS, infoFits, rendezvousOwner, type Member } from "../lib/link/member.js";
import { AdminControls } from "./admin-controls.js";
import { AwaitedMembers, type HeldFrame } from "./awaited-members.js";
import { routeExternalStanza, type StanzaTargets } from "./external-stanzas.js";
import { LinkAuthentication } from "./link-authentication.js";
import { LoadReports } from "./load-reports.js";
import { stall, unstall, type Peer } from "./peer.js";

export interface RouterOptions {
  name: string;
  host: string;
  port: number;
  /** The secret of each component name; a name not here is refused. */
  secretOf: (name: string) => string | undefined;
  log: Logger;
  maxFrame?: number;
  /** Bytes waiting on a link over which the links feeding it are not read (protocol §1.10). */
  highWater?: number;
  /** Largest frame read before a link authenticated: a stranger gets no MiB buffered. */
  maxAuthFrame?: number;
  /** The domains the farm serves: stanzas from external components to them go to the sms. */
  domains: string[];
  /** The farm's database as describeStore gives it (no password), what `describe` answers; absent, none is named. */
  db?: string;
}

const AUTH_TIMEOUT_MS = 10_000;
/** Links that have yet to authenticate, at most: more are closed at accept. */
const MAX_PENDING_LINKS = 256;
const DEFAULT_MAX_AUTH_FRAME = 64 * 1024;

export class Router {
  private server: net.Server | null = null;
  private readonly peers = new Map<string, Peer>();
  private smNames: string[] = [];
  private readonly pending = new Set<net.Socket>();
  /** Every link socket, admin and peer-router links included: close() ends them all, or the server would wait on them. */
  private readonly sockets = new Set<net.Socket>();
  private pingTimer: NodeJS.Timeout | null = null;
  private loadsTimer: NodeJS.Timeout | null = null;
  private pingId = 0;
  /**
   * A router of an active/passive pair starts passive and serves components
   * only once active (router/router-pair.ts); a router alone is active.
   */
  active = true;
  /** ROUTE frames passed on, and returned to their senders as undeliverable (for the metrics). */
  routed = 0;
  returned = 0;
  /**
   * Of a pair, whether this router may still lead (router/router-pair.ts):
   * checked before anything a link sends is acted on, so that a router woken
   * from a pause past its lease steps down before it routes.
   */
  leadCheck: (() => boolean) | null = null;
  /** When this router started: of two passive routers, the elder takes over (protocol §1.9). */
  readonly started = Date.now();
  private readonly loads = new LoadReports(this.started);
  private listening = "";
  /** Linked routers of the pair, told of every change of state. */
  private readonly routerPeers = new Set<net.Socket>();
  /** XEP-0114 components by domain: how to write to each. */
  private readonly externals = new Map<string, (xml: Buffer | string) => void>();
  private readonly linkAuth: LinkAuthentication;
  /** After a takeover, the old active router's members not linked again yet (protocol §1.9). */
  private readonly awaited = new AwaitedMembers();
  private readonly admin: AdminControls;
  private readonly stanzaTargets: StanzaTargets;

  constructor(private readonly opts: RouterOptions) {
    this.linkAuth = new LinkAuthentication(opts.secretOf);
    this.admin = new AdminControls({ active: () => this.active, peers: this.peers, smNames: () => this.smNames, routerPeers: this.routerPeers }, opts.log);
    this.stanzaTargets = {
      externals: this.externals,
      domains: opts.domains,
      smFor: (key) => {
        const owner = rendezvousOwner(this.smNames, key);
        return owner === undefined ? undefined : this.peers.get(owner);
      },
      maxFrame: opts.maxFrame ?? DEFAULT_MAX_FRAME,
    };
  }

  get members(): Member[] {
    const components = [...this.externals.keys()].map((domain): Member => ({ name: domain, role: "component", info: {} }));
    return [...[...this.peers.values()].map((p) => p.member), ...this.awaited.members, ...components];
  }

  /** The active peer router's member table (protocol §1.9): a passive router keeps it, to await those members when it takes over. */
  rememberMembers(members: readonly Member[]): void {
    if (!this.active) this.awaited.remember(members);
  }

  /** Becomes the active or passive router of its pair; a router turning passive lets its components go. */
  setActive(active: boolean): void {
    if (this.active === active) return;
    this.active = active;
    this.opts.log.warn({ active }, active ? "became the active router" : "became the passive router");
    const state = encodeJsonFrame(FrameType.Control, { op: "router-state", active });
    for (const s of this.routerPeers) s.write(state);
    if (!active) {
      // Its own table, awaited if its next turn comes before a peer's (a router that woke past its lease and takes it again).
      this.awaited.remember(this.members);
      for (const p of this.peers.values()) p.socket.destroy();
      this.returnHeld(this.awaited.clear());
    } else {
      this.awaited.begin(new Set(this.peers.keys()), Date.now());
      this.admin.shareDrained();
    }
  }

  /** Frames held for members that did not come back go back to their senders as undeliverable. */
  private returnHeld(gone: { name: string; held: HeldFrame[] }[]): void {
    for (const { name, held } of gone) {
      this.opts.log.warn({ component: name, held: held.length }, "member of the old active router's table did not link again");
      for (const f of held) this.returnToSender(f.from, f.to, f.key, f.raw);
    }
  }

  private returnToSender(from: string, to: string, key: string, raw: Buffer): void {
    const sender = this.peers.get(from);
    if (!sender) return;
    batched(sender.socket).write(encodeJsonFrame(FrameType.Control, { op: "undeliverable", to, key }));
    sender.socket.write(raw);
  }

  /** The drained front ends, name → rate. */
  get drained(): ReadonlyMap<string, number> {
    return this.admin.drained;
  }

  /** The active peer router's set of drained front ends (router/admin-controls.ts). */
  takeDrained(fronts: Record<string, number>): void {
    this.admin.takeDrained(fronts);
  }

  /** Steps down if this router may no longer lead; whether it is active. */
  private leading(): boolean {
    if (this.active && this.leadCheck?.() === false) {
      this.opts.log.warn("router lease lapsed or lost; stepping down before routing");
      this.setActive(false);
    }
    return this.active;
  }

  /** An external component authenticated (router/external-components.ts). */
  attachExternal(domain: string, send: (xml: Buffer | string) => void): boolean {
    if (!this.leading() || this.externals.has(domain) || this.peers.has(domain)) return false;
    this.externals.set(domain, send);
    this.membersChanged();
    return true;
  }

  detachExternal(domain: string): void {
    if (this.externals.delete(domain)) this.membersChanged();
  }

  /** A stanza from an external component (router/external-stanzas.ts). */
  routeFromExternal(domain: string, stanza: Element, xml: string): void {
    routeExternalStanza(this.stanzaTargets, this.leading(), domain, stanza, xml);
  }

  /** Listening for component links (for /readyz). */
  get listeningForLinks(): boolean {
    return this.server?.listening === true;
  }

  async listen(): Promise<net.AddressInfo> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(listenFailure("router.port", this.opts.port, err)));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.pingTimer = setInterval(() => this.pingAll(), PING_INTERVAL_MS);
    this.pingTimer.unref();
    this.loadsTimer = setInterval(() => this.loads.share(this.peers), LOADS_INTERVAL_MS);
    this.loadsTimer.unref();
    this.loads.startSampling();
    const address = server.address() as net.AddressInfo;
    this.listening = `${address.address}:${address.port}`;
    this.opts.log.info({ address: address.address, port: address.port }, "router listening for component links");
    return address;
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.loadsTimer) clearInterval(this.loadsTimer);
    this.loads.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(socket: net.Socket): void {
    // The link port belongs on the farm's private network; still, what connects without authenticating is bounded.
    if (this.pending.size >= MAX_PENDING_LINKS) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.sockets.add(socket);
    const peerAddr = `${socket.remoteAddress}:${socket.remotePort}`;
    const log = this.opts.log.child({ peer: peerAddr });
    const reader = new FrameReader(Math.min(this.opts.maxAuthFrame ?? DEFAULT_MAX_AUTH_FRAME, this.opts.maxFrame ?? DEFAULT_MAX_FRAME));
    const nonce = newNonce();
    let peer: Peer | null = null;
    this.pending.add(socket);
    const authTimer = setTimeout(() => {
      this.linkAuth.logRefusal(log, { reason: "no AUTH in time" });
      socket.destroy();
    }, AUTH_TIMEOUT_MS);
    const hello: HelloBody = { v: LINK_VERSION, router: this.opts.name, nonce, started: this.started };
    socket.write(encodeJsonFrame(FrameType.Hello, hello));

    socket.on("data", (chunk: Buffer) => {
      if (this.leadCheck) this.leading();
      if (socket.destroyed) return;
      try {
        for (const frame of reader.push(chunk)) {
          if (peer) {
            peer.lastHeard = Date.now();
            this.onFrame(peer, frame);
          } else {
            peer = this.authenticate(frame, socket, nonce, log);
            if (peer) {
              clearTimeout(authTimer);
              this.pending.delete(socket);
              reader.maxFrame = this.opts.maxFrame ?? DEFAULT_MAX_FRAME;
            }
          }
        }
      } catch (err) {
        // Whatever a linked process sends, the worst it costs is its own link.
        if (peer) log.error({ err: (err as Error).message, component: peer.member.name }, "link protocol error; closing");
        else this.linkAuth.logRefusal(log, { reason: (err as Error).message });
        socket.destroy();
      }
    });
    socket.on("error", (err) => log.debug({ err: err.message }, "link socket error"));
    socket.on("close", () => {
      clearTimeout(authTimer);
      this.pending.delete(socket);
      this.sockets.delete(socket);
      if (peer) unstall(peer);
      if (peer && this.peers.get(peer.member.name) === peer) {
        this.peers.delete(peer.member.name);
        this.loads.forget(peer.member.name);
        log.warn({ component: peer.member.name, role: peer.member.role }, "component left");
        if (peer.member.role === "sm") this.admin.deletions.smLeft(peer.member.name);
        this.membersChanged();
      }
    });
  }

  /** Links a component whose AUTH passed (router/link-authentication.ts); null when it is refused. */
  private authenticate(frame: Frame, socket: net.Socket, nonce: string, log: Logger): Peer | null {
    const passed = this.linkAuth.check(frame, socket, nonce, log, this.active, (name) => this.peers.has(name) || this.externals.has(name));
    if (!passed) return null;
    const { auth, secret } = passed;
    const admin = auth.role === "admin" || auth.role === "router";
    // An admin link is a tool's (xfarm status): it is answered, never routed to nor listed.
    const member: Member = { name: auth.name, role: auth.role as Member["role"], info: auth.info };
    const peer: Peer = { socket, member, lastHeard: Date.now(), linkedAt: Date.now(), stalledOn: null, stalling: null };
    socket.on("drain", () => unstall(peer));
    if (!admin) this.peers.set(auth.name, peer);
    // Awaited since a takeover: what was held for it follows its WELCOME.
    const held = admin ? [] : this.awaited.take(auth.name);
    socket.write(
      encodeJsonFrame(FrameType.Welcome, {
        v: LINK_VERSION,
        proof: linkProof("router", secret, nonce, auth.nonce, auth.name, auth.role),
        members: this.members,
        active: this.active,
      }),
    );
    if (auth.role === "router") {
      this.routerPeers.add(socket);
      socket.once("close", () => this.routerPeers.delete(socket));
      log.info({ router: auth.name }, "peer router linked");
      this.admin.shareDrained(socket);
      return peer;
    }
    if (admin) {
      log.debug({ component: auth.name }, "admin linked");
      return peer;
    }
    for (const f of held) batched(socket).write(f.raw);
    log.info({ component: auth.name, role: auth.role, held: held.length }, "component linked");
    this.membersChanged(peer);
    if (auth.role === "c2s") this.admin.keepDrained(peer);
    return peer;
  }

  private onFrame(peer: Peer, frame: Frame): void {
    if (frame.type === FrameType.Route) {
      if (!this.peers.has(peer.member.name) || this.peers.get(peer.member.name) !== peer) throw new Error("admin links do not route");
      const h = decodeRouteHeader(frame.body);
      if (h.from !== peer.member.name) throw new Error(`ROUTE from "${h.from}" on the link of "${peer.member.name}"`);
      const name = h.to === SM_ADDRESS ? rendezvousOwner(this.smNames, h.key) : h.to;
      const dest = name === undefined ? undefined : this.peers.get(name);
      const external = dest ? undefined : this.externals.get(h.to);
      if (dest) {
        this.routed++;
        batched(dest.socket).write(frame.raw);
        if (dest.socket.writableLength > (this.opts.highWater ?? DEFAULT_HIGH_WATER)) stall(peer, dest);
      }
      // To an external component the payload is one stanza's XML (protocol §1.8).
      else if (external) external(frame.body.subarray(h.payloadOffset));
      else if (name === undefined || !this.awaited.hold(name, { from: h.from, to: h.to, key: h.key, raw: frame.raw })) {
        this.returned++;
        this.opts.log.debug({ to: h.to, key: h.key, from: h.from }, "undeliverable frame returned to sender");
        this.returnToSender(peer.member.name, h.to, h.key, frame.raw);
      }
      return;
    }
    if (frame.type !== FrameType.Control) throw new Error(`unexpected frame type ${frame.type}`);
    const msg = parseControl(frame.body);
    const reply = (m: ControlMessage): void => void peer.socket.write(encodeJsonFrame(FrameType.Control, m));
    const isAdmin = this.peers.get(peer.member.name) !== peer;
    switch (msg.op) {
      case "ping":
        return reply({ op: "pong", id: msg.id });
      case "load": {
        if ((peer.member.role !== "c2s" && peer.member.role !== "sm") || isAdmin) return;
        const { op: _op, ...load } = msg;
        return this.loads.report(peer.member, load);
      }
      case "info":
        if (isAdmin) return;
        // Passed on to every process in `members`: what one sends must not break the others.
        if (!infoFits(peer.member.role, msg.info)) throw new Error(`malformed info for a ${peer.member.role}`);
        peer.member = { ...peer.member, info: msg.info };
        this.opts.log.info({ component: peer.member.name, info: msg.info }, "component info changed");
        return this.membersChanged();
      case "expect": {
        const target = this.peers.get(msg.to);
        if (!isAdmin && target?.member.role === "c2s") target.socket.write(encodeJsonFrame(FrameType.Control, msg));
        return;
      }
      case "status-request": {
        if (!isAdmin) return;
        const [self, ...entries] = this.statusEntries();
        return reply({ op: "status", router: this.opts.name, active: this.active, self, entries });
      }
      case "describe":
        if (isAdmin) reply({ op: "farm", router: this.opts.name, domains: this.opts.domains, ...(this.opts.db !== undefined && { db: this.opts.db }) });
        return;
      case "drain":
      case "undrain":
      case "user-deleted":
      case "user-password-changed":
      case "user-delete":
        if (isAdmin) this.admin.order(msg, reply, () => !peer.socket.destroyed);
        return;
      case "account-deleted":
        if (!isAdmin && peer.member.role === "sm") this.admin.deletions.answered(msg.id, peer.member.name, msg);
        return;
      default:
        return; // unknown ops are for later versions
    }
  }

  /** The admin's orders (router/admin-controls.ts), from admin links and the console. */
  drain(name: string, rate: number): AdminResult {
    return this.admin.drain(name, rate);
  }

  undrain(name: string): AdminResult {
    return this.admin.undrain(name);
  }

  kick(user: string): AdminResult {
    return this.admin.kick(user);
  }

  announce(body: string): AdminResult {
    return this.admin.announce(body);
  }

  deleteUser(user: string, answer: (result: AdminResult) => void): void {
    this.admin.deleteUser(user, answer);
  }

  /** The rows of `xfarm status` and the admin console (router/load-reports.ts). */
  statusEntries(): StatusEntry[] {
    const self = { name: this.opts.name, peer: this.listening, active: this.active, connections: this.peers.size + this.externals.size };
    return this.loads.statusEntries(self, this.peers);
  }

  private membersChanged(except?: Peer): void {
    const members = this.members;
    this.loads.changed = true;
    this.smNames = members.filter((m) => m.role === "sm").map((m) => m.name);
    const frame = encodeJsonFrame(FrameType.Control, { op: "members", members });
    for (const p of this.peers.values()) if (p !== except) p.socket.write(frame);
    // The pair peer keeps the table, to await these members if it takes over.
    if (this.active) for (const s of this.routerPeers) s.write(frame);
  }

  private pingAll(): void {
    // A timer may run before any link is read when the process wakes from a pause: past its lease, the router steps down first.
    if (this.leadCheck) this.leading();
    const now = Date.now();
    const gone = this.awaited.expire(now);
    if (gone.length > 0) {
      this.returnHeld(gone);
      this.membersChanged();
    }
    const frame = encodeJsonFrame(FrameType.Control, { op: "ping", id: ++this.pingId });
    for (const p of this.peers.values()) {
      // A peer held back by backpressure is silent because we do not read it.
      if (now - p.lastHeard > SILENCE_LIMIT_MS && !p.stalledOn) {
        this.opts.log.warn({ component: p.member.name }, "component silent too long; closing its link");
        p.socket.destroy();
      } else p.socket.write(frame);
    }
  }
}
