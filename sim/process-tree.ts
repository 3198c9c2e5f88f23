// What the benchmark (bench/) and the soak read of a server's processes: the whole process tree
// under the process it started (a farm forks several; ejabberdctl starts a
// shell, erl and beam.smp), summed, as ../shared/anchors/procmon.py does for
// Tsung runs, so that every server is measured the same way.
import fs from "node:fs";

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** `root` and every live descendant of it. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(Number(entry));
    else children.set(stat.ppid, [Number(entry)]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    if (!isRunning(pid)) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Whether a process exists and is not a zombie waiting for its parent. */
export function isRunning(pid: number): boolean {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return text[text.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

interface Stat {
  ppid: number;
  /** utime + stime, ticks. */
  cpu: number;
  /** stime alone, ticks: the kernel's work for the process (system calls, the network stack under them). */
  system: number;
}

function readStat(pid: number): Stat | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may hold spaces: split after it.
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]), system: Number(f[12]) };
  } catch {
    return null;
  }
}

export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) one process has used so far, seconds; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  return (readStat(pid)?.cpu ?? 0) / TICKS;
}

/** A sample of `root`'s tree without process `pid` (one about to be killed): as if it had never run. */
export function sampleTreeWithout(root: number, pid: number): Sample {
  const gone = readStat(pid);
  const sample = sampleTree(root);
  if (!gone) return sample;
  const name = processName(pid);
  sample.cpuS -= gone.cpu / TICKS;
  sample.systemS -= gone.system / TICKS;
  sample.cpuByName[name] = Math.max(0, (sample.cpuByName[name] ?? 0) - gone.cpu / TICKS);
  return sample;
}

export interface Sample {
  /** Epoch milliseconds. */
  at: number;
  /** RSS of the whole tree, KB. */
  rssKb: number;
  /** CPU time of the whole tree so far, seconds (processes that exited drop out). */
  cpuS: number;
  /** Of cpuS, the system time (stime). */
  systemS: number;
  /** The same by process name (processName), summed over the processes of one name. */
  cpuByName: Record<string, number>;
  procs: number;
}

/**
 * What a process is called in per-process figures: a farm process's title
 * without its "xfarm " (router-1, sm-1, c2s-2, start), else its command
 * (beam.smp, lua5.4, sh).
 */
export function processName(pid: number): string {
  try {
    const title = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!.trim();
    if (title.startsWith("xfarm ")) return title.slice(6).split(" ")[0]!;
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "gone";
  }
}

export function sampleTree(root: number, names: Map<number, string> = new Map()): Sample {
  let rss = 0;
  let cpu = 0;
  let system = 0;
  const cpuByName: Record<string, number> = {};
  const pids = processTree(root);
  for (const pid of pids) {
    rss += rssKb(pid);
    const stat = readStat(pid);
    const ticks = stat?.cpu ?? 0;
    cpu += ticks;
    system += stat?.system ?? 0;
    let name = names.get(pid);
    if (name === undefined) {
      name = processName(pid);
      // A farm process that has not set its title yet (just restarted) reads as node: asked again next time.
      if (name !== "node") names.set(pid, name);
    }
    cpuByName[name] = (cpuByName[name] ?? 0) + ticks / TICKS;
  }
  return { at: Date.now(), rssKb: rss, cpuS: cpu / TICKS, systemS: system / TICKS, cpuByName, procs: pids.length };
}

/** Samples a process tree once a second until stopped. */
export class TreeSampler {
  readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  /** A process's name, read once: a process keeps its title. */
  private readonly names = new Map<number, string>();

  constructor(private readonly root: number) {
    this.samples.push(sampleTree(root, this.names));
    this.timer = setInterval(() => this.samples.push(sampleTree(this.root, this.names)), 1000);
  }

  stop(): Sample[] {
    clearInterval(this.timer);
    this.samples.push(sampleTree(this.root, this.names));
    return this.samples;
  }

  /** Samples taken between two epoch times. */
  between(from: number, to: number): Sample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }

  /**
   * The samples between two epoch times, or, where fewer than two fall inside
   * (a window of a second or two), the last one before and the first one after:
   * a difference always needs two.
   */
  spanning(from: number, to: number): Sample[] {
    const inside = this.between(from, to);
    if (inside.length >= 2) return inside;
    const before = this.samples.filter((s) => s.at < from).at(-1);
    const after = this.samples.find((s) => s.at > to);
    return [before, ...inside, after].filter((s): s is Sample => s !== undefined);
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU used between the first and last sample, % of one core (0 with fewer than two). */
export function cpuPercent(samples: Sample[]): number {
  if (samples.length < 2) return 0;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  return ((last.cpuS - first.cpuS) / ((last.at - first.at) / 1000)) * 100;
}

/** CPU µs (user + system) per unit of work: a login, a message. */
export interface CpuMicros {
  /** Every process of the server. */
  total: number;
  /**
   * Of `total`, the system time: the kernel's share (system calls, and on
   * loopback the network stack of both ends). Absent where only the sum is
   * known (Tsung's runs: run.sh samples utime + stime).
   */
  system?: number;
  /** Each process, by processName. */
  by: Record<string, number>;
}

/**
 * CPU µs per unit of work (a login, a message) over the samples' span, for
 * the tree (`total`, and its `system` part) and for each process name, given
 * the work's rate over the same span (units per second). Null with fewer
 * than two samples or no work.
 */
export function cpuMicrosPer(samples: Sample[], perSecond: number): CpuMicros | null {
  if (samples.length < 2 || !(perSecond > 0)) return null;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const units = ((last.at - first.at) / 1000) * perSecond;
  const us = (cpuS: number) => Math.round((cpuS * 1e6) / units);
  const by: Record<string, number> = {};
  for (const [name, cpu] of Object.entries(last.cpuByName)) by[name] = us(Math.max(0, cpu - (first.cpuByName[name] ?? 0)));
  return { total: us(last.cpuS - first.cpuS), system: us(Math.max(0, last.systemS - first.systemS)), by };
}
