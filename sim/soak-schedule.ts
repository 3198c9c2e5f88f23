// When and from where the soak's attacks are made: one is launched every
// `everyMs`, cycling through the kinds (a kind already running as many times
// as it may is passed over), each from a loopback address of its group that
// no other running attack holds, on a front end chosen in turn. Every attack
// is bounded: at its time limit, or when the soak stops, its connections are
// destroyed. What each did is kept as a record.
import { ANSWER_MS, type AddressGroup, type AttackKind, type AttackRun, type Outcome, type SoakTargets } from "./soak-attacks.js";
import { logIn, secureStream, SoakConn } from "./soak-conn.js";

export interface AttackRecord {
  kind: string;
  seq: number;
  address: string;
  /** Seconds since the attacks began. */
  at: number;
  /** How long it took, seconds. */
  seconds: number;
  outcome: string;
  counts?: Record<string, number>;
}

export interface ScheduleOptions {
  everyMs: number;
  /** Attacks running at once at most, all kinds together. */
  maxInFlight: number;
}

interface Running {
  kind: AttackKind;
  slot: number;
  address: string;
  conns: Set<SoakConn>;
  /** Why the scheduler ended it, if it did. */
  ended: string | null;
  done: Promise<void>;
}

export class AttackSchedule {
  readonly records: AttackRecord[] = [];
  private readonly running = new Set<Running>();
  private timer: NodeJS.Timeout | null = null;
  private next = 0;
  private seq = 0;
  /** Attacks launched so far, by kind. */
  private readonly made = new Map<AttackKind, number>();
  private t0 = 0;

  constructor(
    private readonly kinds: readonly AttackKind[],
    private readonly t: SoakTargets,
    private readonly addresses: Record<AddressGroup, string[]>,
    private readonly opts: ScheduleOptions,
  ) {}

  start(): void {
    this.t0 = performance.now();
    this.timer = setInterval(() => this.launch(), this.opts.everyMs);
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Launches no more, ends every running attack, and waits until each has been recorded. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const left = [...this.running];
    for (const r of left) this.end(r, "stopped at the end of the soak");
    await Promise.all(left.map((r) => r.done));
  }

  private launch(): void {
    if (this.running.size >= this.opts.maxInFlight) return;
    for (let tried = 0; tried < this.kinds.length; tried++) {
      const kind = this.kinds[this.next]!;
      this.next = (this.next + 1) % this.kinds.length;
      const mine = [...this.running].filter((r) => r.kind === kind);
      if (mine.length >= kind.parallel) continue;
      const taken = new Set([...this.running].map((r) => r.address));
      const address = this.addresses[kind.group].find((x) => !taken.has(x));
      if (!address) continue;
      const slots = new Set(mine.map((r) => r.slot));
      let slot = 0;
      while (slots.has(slot)) slot++;
      this.begin(kind, slot, address);
      return;
    }
  }

  private end(r: Running, why: string): void {
    r.ended ??= why;
    for (const c of r.conns) c.destroy();
  }

  private begin(kind: AttackKind, slot: number, address: string): void {
    const seq = this.seq++;
    const nth = this.made.get(kind) ?? 0;
    this.made.set(kind, nth + 1);
    const t = this.t;
    const c2s = t.c2s[nth % t.c2s.length]!;
    const conns = new Set<SoakConn>();
    const track = (c: SoakConn) => {
      conns.add(c);
      // Ended meanwhile (a connect that was on its way): this one goes too.
      if (r.ended) c.destroy();
    };
    const run: AttackRun = {
      t,
      address,
      seq,
      nth,
      slot,
      attacker: t.attackers[seq % t.attackers.length]!,
      pick: (list) => list[nth % list.length]!,
      c2s,
      connect: async (port) => {
        const c = await SoakConn.open(port, address);
        track(c);
        return c;
      },
      secure: () => secureStream(c2s.port, address, ANSWER_MS, track),
      login: (user, password = t.attackerPassword) =>
        logIn({
          port: c2s.port,
          localAddress: address,
          user,
          password,
          mechanism: "PLAIN",
          // A login from an address the guessers share could be held by the throttle; none does here.
          answerMs: ANSWER_MS,
          track,
        }),
    };
    const started = performance.now();
    const limit = kind.seconds(t);
    const r: Running = { kind, slot, address, conns, ended: null, done: Promise.resolve() };
    const timer = setTimeout(() => this.end(r, `stopped at its time limit (${limit} s)`), limit * 1000);
    r.done = kind
      .run(run)
      .catch((err: Error): Outcome => ({ outcome: `failed: ${err.message}` }))
      .then((o) => {
        clearTimeout(timer);
        for (const c of conns) c.destroy();
        this.running.delete(r);
        this.records.push({
          kind: kind.name,
          seq,
          address,
          at: Math.round(started - this.t0) / 1000,
          seconds: Math.round(performance.now() - started) / 1000,
          outcome: r.ended ?? o.outcome,
          ...(o.counts && !r.ended ? { counts: o.counts } : {}),
        });
      });
    this.running.add(r);
  }
}
