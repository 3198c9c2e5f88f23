// The router: authenticates component links, keeps the member table and
// shares it, and forwards ROUTE frames by their header alone — it never
// reads a routed payload (docs/architecture.md, "Links").
import net from "node:net";
import type { Logger } from "../lib/log.js";
import { listenFailure } from "../lib/process-lifecycle.js";
import { LogThrottle, clipForLog } from "../lib/log-bounds.js";
import { AUTH_FAILED, LINK_VERSION, authShape, linkProof, newNonce, proofsEqual, type AuthBody, type HelloBody } from "../lib/link/auth.js";
import {
  LOAD_REPORT_MS,
  LOADS_INTERVAL_MS,
  PING_INTERVAL_MS,
  SILENCE_LIMIT_MS,
  parseControl,
  type AdminResult,
  type C2sLoad,
  type ControlMessage,
  type ProcessLoad,
  type StatusEntry,
} from "../lib/link/control.js";
import { ProcessSampler, type ProcessFigures } from "../lib/process-figures.js";
import { batched } from "../lib/link/batch.js";
import { DEFAULT_HIGH_WATER } from "../lib/link/link-client.js";
import { DEFAULT_MAX_FRAME, FrameReader, FrameType, decodeRouteHeader, encodeJsonFrame, encodeRoute, routeLength, type Frame } from "../lib/link/frames.js";
import type { Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import { SM_ADDRESS, infoFits, nameShape, rendezvousOwner, type C2sInfo, type Member } from "../lib/link/member.js";
import { parseJson } from "../lib/link/shape.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { badRequestText } from "../lib/stanza-rules.js";
import { errorReplyXml, isError, type Condition } from "../lib/stanza-error.js";
import { AccountDeletions } from "./account-deletions.js";
import { AwaitedMembers, type HeldFrame } from "./awaited-members.js";
import { DrainedFronts } from "./drained-fronts.js";

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
/** Refused links write one log line per this interval; the next line counts the rest. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

interface Peer {
  socket: net.Socket;
  member: Member;
  lastHeard: number;
  linkedAt: number;
  /** Congested links this peer's frames went to: its socket is not read until they all drain. */
  stalledOn: Set<Peer> | null;
  /** Peers not read until this peer's link drains. */
  stalling: Set<Peer> | null;
}

const NO_LOAD: C2sLoad = { sessions: 0, connections: 0, lag: 0 };

const PASSIVE: AdminResult = { ok: false, error: "this router is passive; ask the active one" };
const NO_SM: AdminResult = { ok: false, error: "no session manager is linked" };

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
  /** The last load each front end and sm reported, and whether the front ends' table changed since it was shared. */
  private readonly loads = new Map<string, ProcessLoad>();
  private loadsChanged = false;
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
  /** This process's own figures, for its row of `xfarm status`, sampled each load report period. */
  private readonly sampler = new ProcessSampler(this.started);
  private figures: ProcessFigures = this.sampler.sample();
  private sampleTimer: NodeJS.Timeout | null = null;
  private listening = "";
  /** Linked routers of the pair, told of every change of state. */
  private readonly routerPeers = new Set<net.Socket>();
  /** XEP-0114 components by domain: how to write to each. */
  private readonly externals = new Map<string, (xml: Buffer | string) => void>();
  private readonly refusals = new LogThrottle(REFUSAL_LOG_INTERVAL_MS);
  /** Stands in for the secret of an unknown name, so its refusal costs the same HMAC as a wrong secret's. */
  private readonly decoySecret = newNonce();
  private readonly drainedFronts = new DrainedFronts();
  /** After a takeover, the old active router's members not linked again yet (protocol §1.9). */
  private readonly awaited = new AwaitedMembers();
  private readonly deletions: AccountDeletions;

  constructor(private readonly opts: RouterOptions) {
    this.deletions = new AccountDeletions((name, msg) => this.sendToSm(name, msg), opts.log);
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
      this.shareDrained();
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
    return this.drainedFronts.all;
  }

  /** The active peer router's set of drained front ends (protocol §1.9): a passive router keeps it for its turn. */
  takeDrained(fronts: Record<string, number>): void {
    if (this.active) return;
    this.drainedFronts.replace(fronts);
  }

  /** The active router tells its pair peer every drained front end, at every change and when the peer links. */
  private shareDrained(socket?: net.Socket): void {
    if (!this.active) return;
    const frame = encodeJsonFrame(FrameType.Control, { op: "drained", fronts: this.drainedFronts.record() });
    for (const s of socket ? [socket] : this.routerPeers) s.write(frame);
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

  /** A stanza from an external component: to a local user's or domain's sm, to a component, or bounced. */
  routeFromExternal(domain: string, stanza: Element, xml: string): void {
    const bounce = (condition: Condition, text?: string) => {
      if (!isError(stanza)) this.externals.get(domain)?.(errorReplyXml(stanza, condition, { text }));
    };
    if (!this.leading()) return bounce("service-unavailable");
    // The router is the first to read a component's stanza, so it is the one to answer a malformed one.
    const malformed = badRequestText(stanza);
    if (malformed) return bounce("bad-request", malformed);
    const to = parseJid(stanza.attrs.to ?? "");
    if (!to) return bounce("jid-malformed");
    const component = this.externals.get(to.domain);
    if (component) return component(xml);
    if (!this.opts.domains.includes(to.domain)) return bounce("remote-server-not-found");
    const key = to.bare;
    const owner = rendezvousOwner(this.smNames, key);
    const peer = owner === undefined ? undefined : this.peers.get(owner);
    if (!peer) return bounce("service-unavailable");
    const payload = encodeSessionPayload(SessionOp.Forward, {}, xml);
    // The sm would close its link on a frame over its limit: such a stanza is refused here.
    if (routeLength(peer.member.name, domain, key, payload.length) > (this.opts.maxFrame ?? DEFAULT_MAX_FRAME)) return bounce("resource-constraint");
    batched(peer.socket).write(encodeRoute(peer.member.name, domain, key, payload));
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
    this.loadsTimer = setInterval(() => this.shareLoads(), LOADS_INTERVAL_MS);
    this.loadsTimer.unref();
    this.sampleTimer = setInterval(() => (this.figures = this.sampler.sample()), LOAD_REPORT_MS);
    this.sampleTimer.unref();
    const address = server.address() as net.AddressInfo;
    this.listening = `${address.address}:${address.port}`;
    this.opts.log.info({ address: address.address, port: address.port }, "router listening for component links");
    return address;
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.loadsTimer) clearInterval(this.loadsTimer);
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    this.sampler.stop();
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
      this.logRefusal(log, { reason: "no AUTH in time" });
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
        else this.logRefusal(log, { reason: (err as Error).message });
        socket.destroy();
      }
    });
    socket.on("error", (err) => log.debug({ err: err.message }, "link socket error"));
    socket.on("close", () => {
      clearTimeout(authTimer);
      this.pending.delete(socket);
      this.sockets.delete(socket);
      if (peer) this.unstall(peer);
      if (peer && this.peers.get(peer.member.name) === peer) {
        this.peers.delete(peer.member.name);
        this.loads.delete(peer.member.name);
        log.warn({ component: peer.member.name, role: peer.member.role }, "component left");
        if (peer.member.role === "sm") this.deletions.smLeft(peer.member.name);
        this.membersChanged();
      }
    });
  }

  /** A stranger's failure is logged now and then, however many come: a line each would be theirs to write. */
  private logRefusal(log: Logger, fields: { component?: string; role?: string; reason: string }): void {
    const unlogged = this.refusals.take();
    if (unlogged !== null) log.warn({ ...fields, component: clipForLog(fields.component), unlogged }, "refused a link");
  }

  private authenticate(frame: Frame, socket: net.Socket, nonce: string, log: Logger): Peer | null {
    if (frame.type !== FrameType.Auth) throw new Error(`expected AUTH, got frame type ${frame.type}`);
    let offered: { component?: string; role?: string } = {};
    const refuse = (reason: string, why = reason) => {
      this.logRefusal(log, { ...offered, reason: why });
      socket.end(encodeJsonFrame(FrameType.Refused, { reason }));
      return null;
    };
    let auth: AuthBody;
    try {
      auth = parseJson(frame.body, authShape, "AUTH");
    } catch (err) {
      return refuse((err as Error).message);
    }
    offered = { component: auth.name, role: auth.role };
    if (auth.v !== LINK_VERSION) return refuse(`unsupported link version ${auth.v}`);
    if (!this.active && (auth.role === "c2s" || auth.role === "sm")) return refuse("this router is passive; link to the active one");
    const secret = nameShape(auth.name) ? this.opts.secretOf(auth.name) : undefined;
    // Computed for an unknown name too, against a decoy: both refusals take the same time and say the same.
    const expected = linkProof("component", secret ?? this.decoySecret, nonce, auth.nonce, auth.name, auth.role);
    if (secret === undefined) return refuse(AUTH_FAILED, "no secret is configured for this name");
    if (!proofsEqual(auth.proof, expected)) return refuse(AUTH_FAILED, "wrong secret");
    // Only now, with the secret proven, may the answer depend on the name.
    if (!infoFits(auth.role, auth.info)) return refuse(`malformed info for a ${auth.role}`);
    const admin = auth.role === "admin" || auth.role === "router";
    if (!admin && (this.peers.has(auth.name) || this.externals.has(auth.name))) return refuse(`a component named "${auth.name}" is already linked`);
    // An admin link is a tool's (xfarm status): it is answered, never routed to nor listed.
    const member: Member = { name: auth.name, role: auth.role as Member["role"], info: auth.info };
    const peer: Peer = { socket, member, lastHeard: Date.now(), linkedAt: Date.now(), stalledOn: null, stalling: null };
    socket.on("drain", () => this.unstall(peer));
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
      this.shareDrained(socket);
      return peer;
    }
    if (admin) {
      log.debug({ component: auth.name }, "admin linked");
      return peer;
    }
    for (const f of held) batched(socket).write(f.raw);
    log.info({ component: auth.name, role: auth.role, held: held.length }, "component linked");
    this.membersChanged(peer);
    if (auth.role === "c2s") this.keepDrained(peer);
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
        if (dest.socket.writableLength > (this.opts.highWater ?? DEFAULT_HIGH_WATER)) this.stall(peer, dest);
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
        this.loads.set(peer.member.name, load);
        if (peer.member.role === "c2s") this.loadsChanged = true;
        return;
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
        if (isAdmin) reply({ op: "result", ...this.drain(msg.name, msg.rate) });
        return;
      case "undrain":
        if (isAdmin) reply({ op: "result", ...this.undrain(msg.name) });
        return;
      case "user-deleted":
      case "user-password-changed": {
        if (!isAdmin) return;
        this.toEverySm(msg);
        return reply({ op: "result", ok: true });
      }
      case "user-delete":
        if (!isAdmin) return;
        return this.deleteUser(msg.user, (r) => {
          if (!peer.socket.destroyed) reply({ op: "result", ...r });
        });
      case "account-deleted":
        if (!isAdmin && peer.member.role === "sm") this.deletions.answered(msg.id, peer.member.name, msg);
        return;
      default:
        return; // unknown ops are for later versions
    }
  }

  /** `xfarm c2s drain` (protocol §1.7): front end `name` moves its clients to the others, `rate` a second, and stays drained. */
  drain(name: string, rate: number): AdminResult {
    if (!this.active) return PASSIVE;
    const target = this.peers.get(name);
    const linked = target?.member.role === "c2s";
    if (!this.drainedFronts.drain(name, rate, linked)) return { ok: false, error: `no front end named "${name}" is linked` };
    if (linked) target.socket.write(encodeJsonFrame(FrameType.Control, { op: "drain", name, rate }));
    this.opts.log.info({ component: name, rate, linked }, "drain ordered");
    this.shareDrained();
    return { ok: true };
  }

  /** `xfarm c2s undrain`: a drained front end takes clients again. */
  undrain(name: string): AdminResult {
    if (!this.active) return PASSIVE;
    const target = this.peers.get(name);
    const linked = target?.member.role === "c2s";
    const draining = linked && (target.member.info as unknown as C2sInfo).draining === true;
    if (!this.drainedFronts.undrain(name, linked, draining)) return { ok: false, error: `front end "${name}" is not drained` };
    if (linked) target.socket.write(encodeJsonFrame(FrameType.Control, { op: "undrain", name }));
    this.opts.log.info({ component: name, linked }, "undrain ordered");
    this.shareDrained();
    return { ok: true };
  }

  /**
   * Ends every session of `user` on every sm, as the first step of a
   * deletion does (its contacts see it go unavailable); the account stays.
   */
  kick(user: string): AdminResult {
    if (!this.active) return PASSIVE;
    // Its own deletion id, never registered: the sms' answers to it are ignored.
    if (this.toEverySm({ op: "delete-account", id: this.deletions.unregisteredId(), user, remove: false }) === 0) return NO_SM;
    this.opts.log.info({ user }, "sessions of the user ended by an admin");
    return { ok: true };
  }

  /** Every sm sends `body` from the domain to each online session it holds (protocol §1.7, `announce`). */
  announce(body: string): AdminResult {
    if (!this.active) return PASSIVE;
    const sms = this.toEverySm({ op: "announce", body });
    if (sms === 0) return NO_SM;
    this.opts.log.info({ sms, length: body.length }, "announcement sent");
    return { ok: true };
  }

  /** Writes `msg` to every linked sm; returns how many there are. */
  private toEverySm(msg: ControlMessage): number {
    const frame = encodeJsonFrame(FrameType.Control, msg);
    let n = 0;
    for (const p of this.peers.values()) {
      if (p.member.role !== "sm") continue;
      p.socket.write(frame);
      n++;
    }
    return n;
  }

  /** Writes `msg` to sm `name`; false when it is not linked. */
  private sendToSm(name: string, msg: ControlMessage): boolean {
    const peer = this.peers.get(name);
    if (peer?.member.role !== "sm") return false;
    peer.socket.write(encodeJsonFrame(FrameType.Control, msg));
    return true;
  }

  /** `xfarm user del` (router/account-deletions.ts); `answer` gets the owner's answer. */
  deleteUser(user: string, answer: (result: AdminResult) => void): void {
    if (!this.active) return answer(PASSIVE);
    const owner = rendezvousOwner(this.smNames, user);
    if (owner === undefined) return answer(NO_SM);
    // Linked ones only: an sm awaited after a takeover has no sessions to end yet.
    this.deletions.start(user, owner, this.smNames.filter((n) => n !== owner && this.peers.has(n)), answer);
  }

  /** A front end linked: its drain goes on, or an undrain it missed reaches it (router/drained-fronts.ts). */
  private keepDrained(peer: Peer): void {
    const name = peer.member.name;
    const info = peer.member.info as unknown as C2sInfo;
    const told = this.drainedFronts.linked(name, info.draining === true, info.drainRate);
    if (told?.op === "undrain") {
      peer.socket.write(encodeJsonFrame(FrameType.Control, { op: "undrain", name }));
      this.opts.log.info({ component: name }, "undrain passed on as it re-linked");
    } else if (told?.adopted) {
      this.opts.log.info({ component: name, rate: told.rate }, "front end linked draining: kept drained");
      this.shareDrained();
    } else if (told) {
      peer.socket.write(encodeJsonFrame(FrameType.Control, { op: "drain", name, rate: told.rate }));
      this.opts.log.info({ component: name, rate: told.rate }, "drained front end linked: drained again");
    }
  }

  /**
   * The rows of `xfarm status` and the admin console: this router's own
   * first (its links as connections, `info.active` its state), then every
   * linked process with its last load report (null until its first).
   */
  statusEntries(): StatusEntry[] {
    const { lag, ...figures } = this.figures;
    const self: StatusEntry = {
      name: this.opts.name,
      role: "router",
      peer: this.listening,
      info: { active: this.active },
      load: { sessions: 0, connections: this.peers.size + this.externals.size, lag, ...figures },
      linkedAt: this.started,
      queued: 0,
    };
    const linked = [...this.peers.values()].map((p) => ({
      name: p.member.name,
      role: p.member.role,
      peer: `${p.socket.remoteAddress}:${p.socket.remotePort}`,
      info: p.member.info,
      load: this.loads.get(p.member.name) ?? null,
      linkedAt: p.linkedAt,
      queued: p.socket.writableLength,
    }));
    return [self, ...linked];
  }

  /** The load table, every front end's last report (zero until its first), with what the front ends' balancers read. */
  loadTable(): Record<string, C2sLoad> {
    const c2s = [...this.peers.values()].filter((p) => p.member.role === "c2s");
    const balancing = ({ sessions, connections, lag, throttled, delayedLogins, peers }: ProcessLoad): C2sLoad => ({
      sessions,
      connections,
      lag,
      throttled: throttled ?? 0,
      delayedLogins: delayedLogins ?? 0,
      peers: peers ?? 0,
    });
    // fromEntries: every name an own property, "__proto__" too.
    return Object.fromEntries(c2s.map((p) => [p.member.name, balancing(this.loads.get(p.member.name) ?? NO_LOAD)]));
  }

  private shareLoads(): void {
    if (!this.loadsChanged) return;
    this.loadsChanged = false;
    const frame = encodeJsonFrame(FrameType.Control, { op: "loads", loads: this.loadTable() });
    for (const p of this.peers.values()) if (p.member.role === "c2s") p.socket.write(frame);
  }

  /**
   * Backpressure: `dest` is not reading as fast as `source` sends it frames, so
   * `source` is not read until `dest` drains; TCP then holds the rest on the
   * sender's side, which stops reading its own inputs in turn. A peer that
   * stops reading altogether goes silent and is cut at the silence limit,
   * which releases what it held.
   */
  private stall(source: Peer, dest: Peer): void {
    if (source === dest || source.stalledOn?.has(dest)) return;
    (source.stalledOn ??= new Set()).add(dest);
    (dest.stalling ??= new Set()).add(source);
    source.socket.pause();
  }

  /** `dest` drained (or is gone): the peers it held are read again. */
  private unstall(dest: Peer): void {
    const held = dest.stalling;
    if (!held) return;
    dest.stalling = null;
    for (const source of held) {
      source.stalledOn?.delete(dest);
      if (source.stalledOn?.size === 0) {
        source.stalledOn = null;
        source.lastHeard = Date.now();
        source.socket.resume();
      }
    }
  }

  private membersChanged(except?: Peer): void {
    const members = this.members;
    this.loadsChanged = true;
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
