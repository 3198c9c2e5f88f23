// One simulator worker: drives its share of the users (arrival k when
// k % workers == index), keeps their statistics, and reports to the parent
// (sim/protocol.ts). Run as a forked process (sim/worker-main.ts), each
// with its own file-descriptor limit, or in the parent's process when
// run.workers is 0.
import fs from "node:fs";
import tls from "node:tls";
import { arrivalTimes, prng } from "./arrivals.js";
import { SimClient } from "./client.js";
import type { Ctx } from "./client-ctx.js";
import { OnlineSet } from "./online-set.js";
import type { ToParent, ToWorker } from "./protocol.js";
import { userName, type Scenario } from "./scenario.js";
import { Recorder } from "./stats.js";
import { Wheel } from "./wheel.js";

const STATUS_MS = 100;
/** How long closing sessions get to end cleanly when the run stops. */
const STOP_GRACE_MS = 2500;

export class SimWorker implements Ctx {
  sc!: Scenario;
  readonly rec = new Recorder();
  readonly wheel = new Wheel();
  online!: OnlineSet;
  random!: () => number;
  tls!: tls.SecureContext;
  verify = false;
  chatRate: number[] = [];
  chatsEnded = false;
  runStartMicros = 0;
  syncPoint: number[] = [];
  smRequestEvery = 0;
  smResume = false;
  open = 0;
  sessions = 0;

  private index = 0;
  private workers = 1;
  /** performance.now() of the run's start. */
  private t0 = 0;
  private mine: number[] = [];
  private times: Float64Array = new Float64Array(0);
  private nextArrival = 0;
  private arrivalTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private readonly alive = new Set<SimClient>();
  private ownOnline = 0;
  private up: number[] = [];
  private down: number[] = [];
  private reached: number[] = [];
  private missed: number[] = [];
  private released: boolean[] = [];
  private waiting: SimClient[][] = [];
  private dirty = false;
  private sec = 0;
  private stopping = false;
  private idleSent = false;
  /** Messages received here (duplicates are told apart by them), bounced back here, and those senders could not confirm. */
  private readonly seen = new Set<number>();
  private readonly bouncedKeys = new Set<number>();
  private readonly atRisk = new Set<number>();
  private riskOut: number[] = [];
  private pads = new Map<number, string>();
  private lastSent = -1;
  private lastReceived = -1;

  constructor(private readonly post: (m: ToParent) => void) {}

  handle(m: ToWorker): void {
    switch (m.type) {
      case "start":
        return this.start(m);
      case "online":
        for (const k of m.up) this.online.add(k);
        for (const k of m.down) this.online.delete(k);
        for (const key of m.unconfirmed) this.atRiskAdd(key);
        return;
      case "release":
        return this.release(m.point);
      case "end-chats":
        this.chatsEnded = true;
        return;
      case "stop":
        return this.stop();
    }
  }

  private start(m: Extract<ToWorker, { type: "start" }>): void {
    const sc = m.scenario;
    this.sc = sc;
    this.index = m.index;
    this.workers = Math.max(1, m.workers);
    this.online = new OnlineSet(sc.users.accounts);
    // Each worker its own stream of choices (targets, think times); the schedule is the same for all.
    this.random = prng(sc.run.seed * 7919 + this.index + 1);
    this.verify = !!sc.server.ca;
    this.tls = tls.createSecureContext(sc.server.ca ? { ca: fs.readFileSync(sc.server.ca) } : {});
    let points = 0;
    sc.actions.forEach((a, i) => {
      this.chatRate[i] = a.type === "chat" ? a.rate : 0;
      this.syncPoint[i] = a.type === "sync" ? points++ : -1;
      if (a.type === "sm") {
        this.smRequestEvery = a.request_every;
        this.smResume = a.resume;
      }
    });
    this.reached = new Array<number>(points).fill(0);
    this.missed = new Array<number>(points).fill(0);
    this.released = new Array<boolean>(points).fill(false);
    this.waiting = Array.from({ length: points }, () => []);
    this.times = arrivalTimes(sc);
    for (let k = this.index; k < this.times.length; k += this.workers) this.mine.push(k);
    this.t0 = performance.now() + (m.t0 - Date.now());
    this.runStartMicros = m.t0 * 1000;
    this.scheduleArrivals();
    this.scheduleTick();
    this.statusTimer = setInterval(() => this.flushStatus(), STATUS_MS);
    if (sc.session.keepalive > 0) this.keepaliveTimer = setInterval(() => this.keepalives(), 1000);
    this.checkIdle();
  }

  private scheduleArrivals(): void {
    if (this.stopping || this.nextArrival >= this.mine.length) return;
    const at = this.t0 + this.times[this.mine[this.nextArrival]!]!;
    this.arrivalTimer = setTimeout(() => this.arrive(), Math.max(0, at - performance.now()));
  }

  private arrive(): void {
    const now = performance.now();
    const sources = this.sc.server.sources;
    while (!this.stopping && this.nextArrival < this.mine.length && this.t0 + this.times[this.mine[this.nextArrival]!]! <= now + 1) {
      const k = this.mine[this.nextArrival]!;
      // Each worker spreads its own connections over every source address.
      const source = sources.length ? sources[this.nextArrival % sources.length] : undefined;
      this.nextArrival++;
      const c = new SimClient(this, k, source);
      this.alive.add(c);
      this.rec.count("arrived");
      c.start();
    }
    this.scheduleArrivals();
  }

  private scheduleTick(): void {
    const at = this.t0 + (this.sec + 1) * 1000;
    this.tickTimer = setTimeout(() => {
      this.flushStatus();
      this.post({ type: "tick", report: this.rec.tick(this.sec, this.gauges()) });
      this.sec++;
      this.scheduleTick();
    }, Math.max(0, at - performance.now()));
  }

  private gauges() {
    return { open: this.open, sessions: this.sessions, online: this.ownOnline };
  }

  private keepalives(): void {
    const limit = performance.now() - this.sc.session.keepalive * 1000;
    for (const c of this.alive) {
      if (c.active && c.lastWrite <= limit) {
        c.write(" ");
        this.rec.count("keepalives");
      }
    }
  }

  private flushStatus(): void {
    const c = this.rec.c;
    const sent = c.msgs_sent;
    // Messages to online users accounted for: arrived, bounced, or lost in flight (in the sender's count, until they turn up).
    const received = c.msgs_delivered + c.msgs_bounced + c.msgs_unconfirmed - c.msgs_unconfirmed_accounted;
    if (!this.dirty && sent === this.lastSent && received === this.lastReceived) return;
    this.post({ type: "status", up: this.up, down: this.down, unconfirmed: this.riskOut, reached: this.reached.slice(), missed: this.missed.slice(), sent, received });
    this.up = [];
    this.down = [];
    this.riskOut = [];
    this.dirty = false;
    this.lastSent = sent;
    this.lastReceived = received;
  }

  private release(point: number): void {
    if (this.released[point]) return;
    this.released[point] = true;
    const list = this.waiting[point]!;
    this.waiting[point] = [];
    for (const c of list) c.next();
  }

  private checkIdle(): void {
    if (this.idleSent || this.stopping || this.nextArrival < this.mine.length || this.alive.size > 0) return;
    this.idleSent = true;
    this.flushStatus();
    this.post({ type: "idle" });
  }

  private stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.arrivalTimer) clearTimeout(this.arrivalTimer);
    for (const c of [...this.alive]) c.close(true);
    const deadline = performance.now() + STOP_GRACE_MS;
    const wait = () => {
      if (this.alive.size > 0 && performance.now() < deadline) return void setTimeout(wait, 50);
      for (const c of [...this.alive]) c.close(true);
      this.finish();
    };
    wait();
  }

  private finish(): void {
    for (const t of [this.tickTimer, this.statusTimer, this.keepaliveTimer]) if (t) clearTimeout(t);
    this.wheel.stop();
    for (const c of this.alive) c.sock?.destroy();
    this.flushStatus();
    this.post({ type: "final", report: this.rec.tick(this.sec, this.gauges()) });
  }

  // Ctx: what clients call.

  userName(k: number): string {
    return userName(this.sc.users.name, this.sc.users.first + k);
  }

  password(k: number): string {
    return userName(this.sc.users.password, this.sc.users.first + k);
  }

  body(head: string, size: number): string {
    let pad = this.pads.get(size);
    if (pad === undefined) this.pads.set(size, (pad = "x".repeat(size)));
    return head.length >= size ? head : head + pad.slice(head.length);
  }

  msgKey(k: number, seq: number): number {
    return seq * this.sc.users.accounts + k;
  }

  received(key: number, online: boolean): boolean {
    if (this.seen.has(key)) {
      this.rec.count("msgs_duplicated");
      return false;
    }
    this.seen.add(key);
    if (!online) return true;
    this.rec.count("msgs_delivered");
    if (this.atRisk.has(key)) this.rec.count("msgs_unconfirmed_accounted");
    return true;
  }

  bounced(key: number): void {
    if (this.bouncedKeys.has(key)) return;
    this.bouncedKeys.add(key);
    this.rec.count("msgs_bounced");
    if (this.atRisk.has(key)) this.rec.count("msgs_unconfirmed_accounted");
  }

  unconfirmed(keys: number[]): void {
    this.rec.count("msgs_unconfirmed", keys.length);
    for (const key of keys) this.atRiskAdd(key);
    // The receiver may be another worker's user: the parent passes these on.
    this.riskOut.push(...keys);
    this.dirty = true;
  }

  private atRiskAdd(key: number): void {
    if (this.atRisk.has(key)) return;
    this.atRisk.add(key);
    // It arrived (or came back) before its sender lost the connection: accounted for after all.
    if (this.bouncedKeys.has(key) || this.seen.has(key)) this.rec.count("msgs_unconfirmed_accounted");
  }

  wentOnline(c: SimClient): void {
    this.online.add(c.k);
    this.ownOnline++;
    this.up.push(c.k);
    this.dirty = true;
  }

  wentOffline(c: SimClient): void {
    this.online.delete(c.k);
    this.ownOnline--;
    this.down.push(c.k);
    this.dirty = true;
  }

  syncReleased(point: number): boolean {
    return this.released[point] === true;
  }

  reachedSync(c: SimClient, point: number): void {
    this.reached[point]!++;
    this.dirty = true;
    if (this.released[point]) return c.next();
    this.waiting[point]!.push(c);
  }

  finished(c: SimClient, syncs: number): void {
    this.alive.delete(c);
    for (let p = syncs; p < this.missed.length; p++) this.missed[p]!++;
    if (syncs < this.missed.length) this.dirty = true;
    this.checkIdle();
  }
}
