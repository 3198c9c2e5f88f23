// The farm's processes as the kernel sees them: PID and resident memory,
// read before and after a hostile client did its worst, so a test can say
// that no process died (the supervisor would have restarted it under a new
// PID) and how much memory the attack cost.
import fs from "node:fs";
import type { Farm } from "./farm.js";

export interface ProcessStat {
  pid: number;
  /** Resident set size in KiB (VmRSS). */
  rssKb: number;
}

/** VmRSS of a live process in KiB; throws if it is gone. */
export function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

/** PID and memory of each named farm child (c2s-1, sm-1, router-1, …). */
export function processStats(farm: Farm, names: string[]): Record<string, ProcessStat> {
  const out: Record<string, ProcessStat> = {};
  for (const name of names) {
    const pid = farm.childPid(name);
    out[name] = { pid, rssKb: rssKb(pid) };
  }
  return out;
}

/**
 * Reads the same processes again and checks that each is the one read
 * before (not restarted); returns how many KiB each grew by.
 */
export function survivors(farm: Farm, before: Record<string, ProcessStat>): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const [name, stat] of Object.entries(before)) {
    const pid = farm.childPid(name);
    if (pid !== stat.pid) throw new Error(`${name} was restarted (pid ${stat.pid} → ${pid})`);
    grown[name] = rssKb(pid) - stat.rssKb;
  }
  return grown;
}
