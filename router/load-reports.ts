// The load each linked front end and sm last reported (protocol §1.6), and
// this router's own figures, sampled; and the tables made of them: the front
// ends' balancers read the c2s loads, `xfarm status` and the admin console a
// row per process.
import { LOAD_REPORT_MS, type C2sLoad, type ProcessLoad, type StatusEntry } from "../lib/link/control.js";
import { ProcessSampler, type ProcessFigures } from "../lib/process-figures.js";
import { FrameType, encodeJsonFrame } from "../lib/link/frames.js";
import type { Member } from "../lib/link/member.js";
import type { Peer } from "./peer.js";

const NO_LOAD: C2sLoad = { sessions: 0, connections: 0, lag: 0 };

export class LoadReports {
  private readonly loads = new Map<string, ProcessLoad>();
  /** Whether the front ends' table changed since it was shared. */
  changed = false;
  /** This process's own figures, for its row of `xfarm status`, sampled each load report period. */
  private readonly sampler: ProcessSampler;
  private figures: ProcessFigures;
  private sampleTimer: NodeJS.Timeout | null = null;

  /** `started`: when this router started. */
  constructor(private readonly started: number) {
    this.sampler = new ProcessSampler(started);
    this.figures = this.sampler.sample();
  }

  /** Samples this router's figures each load report period, until stop(). */
  startSampling(): void {
    this.sampleTimer = setInterval(() => (this.figures = this.sampler.sample()), LOAD_REPORT_MS);
    this.sampleTimer.unref();
  }

  stop(): void {
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    this.sampler.stop();
  }

  /** A linked process reported its load. */
  report(member: Member, load: ProcessLoad): void {
    this.loads.set(member.name, load);
    if (member.role === "c2s") this.changed = true;
  }

  /** Process `name` left. */
  forget(name: string): void {
    this.loads.delete(name);
  }

  /**
   * The rows of `xfarm status` and the admin console: this router's own
   * first (its links as connections, `info.active` its state), then every
   * linked process with its last load report (null until its first).
   */
  statusEntries(self: { name: string; peer: string; active: boolean; connections: number }, linked: ReadonlyMap<string, Peer>): StatusEntry[] {
    const { lag, ...figures } = this.figures;
    const own: StatusEntry = {
      name: self.name,
      role: "router",
      peer: self.peer,
      info: { active: self.active },
      load: { sessions: 0, connections: self.connections, lag, ...figures },
      linkedAt: this.started,
      queued: 0,
    };
    const rows = [...linked.values()].map((p) => ({
      name: p.member.name,
      role: p.member.role,
      peer: `${p.socket.remoteAddress}:${p.socket.remotePort}`,
      info: p.member.info,
      load: this.loads.get(p.member.name) ?? null,
      linkedAt: p.linkedAt,
      queued: p.socket.writableLength,
    }));
    return [own, ...rows];
  }

  /** The load table, every front end's last report (zero until its first), with what the front ends' balancers read. */
  table(linked: ReadonlyMap<string, Peer>): Record<string, C2sLoad> {
    const c2s = [...linked.values()].filter((p) => p.member.role === "c2s");
    const balancing = ({ sessions, connections, lag, throttled, delayedLogins, peers, expecting, heard }: ProcessLoad): C2sLoad => ({
      sessions,
      connections,
      lag,
      throttled: throttled ?? 0,
      delayedLogins: delayedLogins ?? 0,
      peers: peers ?? 0,
      // Absent from a front end of an earlier version: its peers then time their estimates (c2s/balancer.ts).
      ...(expecting !== undefined && { expecting }),
      ...(heard !== undefined && { heard }),
    });
    // fromEntries: every name an own property, "__proto__" too.
    return Object.fromEntries(c2s.map((p) => [p.member.name, balancing(this.loads.get(p.member.name) ?? NO_LOAD)]));
  }

  /** The front ends get the table, if it changed since they last did. */
  share(linked: ReadonlyMap<string, Peer>): void {
    if (!this.changed) return;
    this.changed = false;
    const frame = encodeJsonFrame(FrameType.Control, { op: "loads", loads: this.table(linked) });
    for (const p of linked.values()) if (p.member.role === "c2s") p.socket.write(frame);
  }
}
