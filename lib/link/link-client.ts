// A component's link to the router: authenticates, keeps the member table,
// reconnects with backoff, and queues what is sent while the link is down.
import { EventEmitter } from "node:events";
import net from "node:net";
import type { Logger } from "../log.js";
import { AUTH_FAILED, LINK_VERSION, helloShape, linkProof, newNonce, proofsEqual, refusedShape, welcomeShape, type AuthBody } from "./auth.js";
import { PING_INTERVAL_MS, SILENCE_LIMIT_MS, parseControl, type C2sLoad, type ControlMessage } from "./control.js";
import { batched } from "./batch.js";
import { DEFAULT_MAX_FRAME, FrameReader, FrameType, decodeRouteHeader, encodeJsonFrame, encodeRoute, routeLength, type Frame } from "./frames.js";
import { rendezvousOwner, type LinkRole, type Member, type RoutePort } from "./member.js";
import { parseJson } from "./shape.js";

export interface LinkClientOptions {
  name: string;
  role: LinkRole;
  secret: string;
  /** Router addresses, "host:port"; tried in turn. */
  routers: string[];
  info: Record<string, unknown>;
  log: Logger;
  maxFrame?: number;
  /** Frames kept while the link is down before they are handed back as undeliverable. */
  maxQueued?: number;
  /** Bytes waiting to be written on the link over which it is congested (protocol §1.10). */
  highWater?: number;
  /**
   * Stop reading frames while the link is congested (an sm: what it reads
   * makes it write; the router then holds what it has for us).
   */
  pauseWhenCongested?: boolean;
}

export interface LinkClientEvents {
  up: [];
  /** Right after `up`, when the link before was cut for silence (this process or the router was stopped or hung). */
  silenced: [];
  down: [];
  /** An attempt ended before the link was up (refused, reset, or refused by the router); the next is scheduled. */
  failed: [reason: string];
  /**
   * The router refused this component's secret, or proved it does not share it, before the link was ever up:
   * the config is wrong (secrets."NAME"), which no retry fixes. The attempts go on unless the listener stops them.
   */
  secretRefused: [reason: string];
  members: [Member[]];
  route: [from: string, key: string, payload: Buffer];
  /** The router could not deliver a frame we sent, or the link was down too long. */
  undeliverable: [to: string, key: string, payload: Buffer];
  /** The front ends' load table (sent to front ends only). */
  loads: [Record<string, C2sLoad>];
  /** Any other CONTROL message: admin requests and answers, drain orders. */
  control: [ControlMessage];
  /** The link is no longer congested: everything queued on it was written. */
  drain: [];
}

export const DEFAULT_HIGH_WATER = 8 * 1024 * 1024;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`bad address "${text}", expected host:port or [v6]:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

export class LinkClient extends EventEmitter<LinkClientEvents> implements RoutePort {
  readonly name: string;
  private socket: net.Socket | null = null;
  /** Why the current attempt failed, for the `failed` event. */
  private lastError: string | null = null;
  private ready = false;
  /** Whether a link was ever up: a refused secret after that is the farm's change, not this process's config. */
  private everUp = false;
  private stopped = false;
  private attempt = 0;
  private routerIndex = 0;
  private memberList: Member[] = [];
  private smNames: string[] = [];
  private queue: { to: string; key: string; payload: Buffer }[] = [];
  private bounceNext: { to: string; key: string } | null = null;
  private lastHeard = 0;
  /** The last link was cut for silence: this process was stopped or hung, or the router was, and the farm may have given up on this one meanwhile. */
  private cutForSilence = false;
  private pingTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  /** Whether the router answering the last WELCOME was active (protocol §1.9), and its name. */
  peerActive = false;
  routerName = "";
  routerStarted = 0;

  constructor(private readonly opts: LinkClientOptions) {
    super();
    this.name = opts.name;
    this.log = opts.log.child({ link: "router" });
  }

  get connected(): boolean {
    return this.ready;
  }

  /** How long the router has been silent on this link (ms): a link left stale by a pause still looks connected. */
  get silentMs(): number {
    return Date.now() - this.lastHeard;
  }

  get members(): readonly Member[] {
    return this.memberList;
  }

  /** More is waiting to be written on the link than its high-water mark: writers should stop taking input. */
  get congested(): boolean {
    return this.ready && this.socket !== null && this.socket.writableLength > (this.opts.highWater ?? DEFAULT_HIGH_WATER);
  }

  /** Bytes waiting to be written to the router (a metric: xfarm_link_queued_bytes). */
  get queuedBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes the link after what was written is flushed. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.end();
  }

  /**
   * Sends a ROUTE frame, or queues it while the link is down. A frame over
   * link.max_frame is never sent, since the router would close the link on
   * it: false tells the caller so (and the refusal is logged).
   */
  send(to: string, key: string, payload: Buffer): boolean {
    const length = routeLength(to, this.name, key, payload.length);
    const max = this.opts.maxFrame ?? DEFAULT_MAX_FRAME;
    if (length > max) {
      this.log.warn({ to, key: key.slice(0, 256), length, max }, "frame over link.max_frame not sent");
      return false;
    }
    if (this.ready && this.socket) {
      batched(this.socket).write(encodeRoute(to, this.name, key, payload));
      return true;
    }
    if (this.queue.length >= (this.opts.maxQueued ?? 10_000)) {
      this.emit("undeliverable", to, key, payload);
      return true;
    }
    this.queue.push({ to, key, payload });
    return true;
  }

  /** Sends a CONTROL message now, or drops it while the link is down (control state is rebuilt on re-link). */
  sendControl(msg: ControlMessage): void {
    if (this.ready && this.socket) batched(this.socket).write(encodeJsonFrame(FrameType.Control, msg));
  }

  /** Announces new `info` now, and on every later re-link (protocol §1.3). */
  setInfo(info: Record<string, unknown>): void {
    this.opts.info = info;
    this.sendControl({ op: "info", info });
  }

  smOwnerOf(key: string): string | undefined {
    return rendezvousOwner(this.smNames, key);
  }

  private connect(): void {
    const address = this.opts.routers[this.routerIndex % this.opts.routers.length]!;
    const { host, port } = parseHostPort(address);
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    const reader = new FrameReader(this.opts.maxFrame ?? DEFAULT_MAX_FRAME);
    let nonce = "";
    let helloNonce = "";
    socket.on("data", (chunk: Buffer) => {
      const now = Date.now();
      if (this.ready && now - this.lastHeard > SILENCE_LIMIT_MS) {
        // This process was stopped or hung past the silence limit: the router has cut it off and
        // dealt with what it had sent; what waited in the socket is stale, and is not acted on.
        this.log.warn({ silentMs: now - this.lastHeard }, "woke after the router link's silence limit; reconnecting");
        this.cutForSilence = true;
        socket.destroy();
        return;
      }
      this.lastHeard = now;
      try {
        for (const frame of reader.push(chunk)) {
          if (!this.ready) {
            const r = this.handshake(frame, socket, helloNonce, nonce);
            if (r.helloNonce) {
              helloNonce = r.helloNonce;
              nonce = r.nonce!;
            }
          } else this.onFrame(frame, socket);
        }
      } catch (err) {
        this.log.error({ err, router: address }, "link protocol error; closing");
        socket.destroy();
        return;
      }
      if (this.opts.pauseWhenCongested && this.congested) socket.pause();
    });
    socket.on("drain", () => {
      if (socket !== this.socket) return;
      // The router took what we had: it is alive even if we did not read it meanwhile. Only then:
      // while we read, its silence is what counts, since a stopped router's kernel takes writes too.
      if (socket.isPaused()) this.lastHeard = Date.now();
      socket.resume();
      this.emit("drain");
    });
    socket.on("error", (err) => {
      this.lastError = err.message;
      if (this.attempt === 0 || this.attempt % 10 === 0) this.log.warn({ err: err.message, router: address }, "router link error");
    });
    // A router that accepts but never answers (stopped, hung: its kernel still accepts) is given up like a silent one.
    const handshake = setTimeout(() => {
      if (socket === this.socket && !this.ready) {
        this.lastError = "no WELCOME in time";
        socket.destroy();
      }
    }, SILENCE_LIMIT_MS);
    socket.on("close", () => {
      clearTimeout(handshake);
      this.onClose(socket);
    });
  }

  private handshake(frame: Frame, socket: net.Socket, routerNonce: string, nonce: string): { helloNonce?: string; nonce?: string } {
    const { name, role, secret, info } = this.opts;
    switch (frame.type) {
      case FrameType.Hello: {
        const hello = parseJson(frame.body, helloShape, "HELLO");
        this.routerName = hello.router;
        this.routerStarted = hello.started;
        const myNonce = newNonce();
        const auth: AuthBody = {
          v: LINK_VERSION,
          name,
          role,
          nonce: myNonce,
          proof: linkProof("component", secret, hello.nonce, myNonce, name, role),
          info,
        };
        socket.write(encodeJsonFrame(FrameType.Auth, auth));
        return { helloNonce: hello.nonce, nonce: myNonce };
      }
      case FrameType.Welcome: {
        const welcome = parseJson(frame.body, welcomeShape, "WELCOME");
        if (!proofsEqual(welcome.proof, linkProof("router", secret, routerNonce, nonce, name, role))) {
          this.log.error("router's proof is wrong: it does not know this component's secret; closing link");
          socket.destroy();
          if (!this.everUp) this.emit("secretRefused", "the router does not know this component's secret");
          return {};
        }
        this.ready = true;
        this.everUp = true;
        this.attempt = 0;
        this.peerActive = welcome.active;
        this.log.info({ router: socket.remoteAddress }, "linked to router");
        this.setMembers(welcome.members);
        this.startPings(socket);
        const queued = this.queue;
        this.queue = [];
        for (const q of queued) socket.write(encodeRoute(q.to, this.name, q.key, q.payload));
        this.emit("up");
        if (this.cutForSilence) {
          this.cutForSilence = false;
          this.emit("silenced");
        }
        return {};
      }
      case FrameType.Refused: {
        const refused = parseJson(frame.body, refusedShape, "REFUSED");
        this.lastError = `refused: ${refused.reason}`;
        this.log.error({ reason: refused.reason }, "router refused this component's link");
        socket.destroy();
        if (refused.reason === AUTH_FAILED && !this.everUp) this.emit("secretRefused", `the router refused this component's secret (${refused.reason})`);
        return {};
      }
      default:
        throw new Error(`unexpected frame type ${frame.type} before welcome`);
    }
  }

  private onFrame(frame: Frame, socket: net.Socket): void {
    if (frame.type === FrameType.Route) {
      const h = decodeRouteHeader(frame.body);
      const payload = frame.body.subarray(h.payloadOffset);
      if (this.bounceNext) {
        const b = this.bounceNext;
        this.bounceNext = null;
        this.emit("undeliverable", b.to, b.key, payload);
      } else this.emit("route", h.from, h.key, payload);
      return;
    }
    if (frame.type !== FrameType.Control) throw new Error(`unexpected frame type ${frame.type}`);
    const msg = parseControl(frame.body);
    switch (msg.op) {
      case "members":
        this.setMembers(msg.members);
        break;
      case "ping":
        socket.write(encodeJsonFrame(FrameType.Control, { op: "pong", id: msg.id }));
        break;
      case "undeliverable":
        this.bounceNext = { to: msg.to, key: msg.key };
        break;
      case "loads":
        this.emit("loads", msg.loads);
        break;
      default:
        this.emit("control", msg);
    }
  }

  private setMembers(members: Member[]): void {
    this.memberList = members;
    this.smNames = members.filter((m) => m.role === "sm").map((m) => m.name);
    this.emit("members", members);
  }

  private startPings(socket: net.Socket): void {
    let id = 0;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        this.log.warn("router link silent too long; reconnecting");
        this.cutForSilence = true;
        socket.destroy();
        return;
      }
      socket.write(encodeJsonFrame(FrameType.Control, { op: "ping", id: ++id }));
    }, PING_INTERVAL_MS);
    this.pingTimer.unref();
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const wasReady = this.ready;
    this.ready = false;
    this.bounceNext = null;
    if (wasReady) {
      // The member table is kept: the farm is probably still there, and the
      // next WELCOME brings the fresh one.
      this.log.warn("router link lost");
      this.emit("down");
    } else this.emit("failed", this.lastError ?? "closed before it was up");
    this.lastError = null;
    if (this.stopped) return;
    this.routerIndex++;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt++);
    const delay = base * (0.8 + Math.random() * 0.4);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
