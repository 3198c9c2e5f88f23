// The parent of a simulator run: forks the workers, starts them on one
// clock, relays who is online, releases sync points, merges the statistics
// every second, shows progress, and stops everything at the duration limit.
import { fork, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { plannedArrivals } from "./arrivals.js";
import type { ToParent, ToWorker } from "./protocol.js";
import { buildResults, progressLine, type SimResults, type SyncOutcome } from "./results.js";
import type { Scenario } from "./scenario.js";
import { Merger } from "./stats.js";
import { SimWorker } from "./worker.js";

/** The compiled worker entry (tests that import this file from source still fork the build). */
export const WORKER_MAIN = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../dist/sim/worker-main.js" : "./worker-main.js", import.meta.url),
);

export interface RunOptions {
  /** Progress on stderr: a rewritten line on a terminal, a line a second otherwise, or none. */
  progress?: "auto" | "tty" | "lines" | "none";
  /** Where progress goes (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Aborts the run (as Ctrl-C does): sessions are closed and the results kept. */
  signal?: AbortSignal;
  /**
   * Ends every chat action when aborted, before its duration or count: each chatting user goes on
   * with its next action at its next turn, and the run goes on to its end (a caller's cue: the
   * event the chat was load for is over).
   */
  endChats?: AbortSignal;
  /** Called as each sync point is released, with its outcome (a caller's cue: everyone is in, the chat is over). */
  onSync?: (outcome: SyncOutcome) => void;
}

interface WorkerHandle {
  index: number;
  pid: number;
  users: number;
  send(m: ToWorker): void;
  baseRss: number;
  peakRss: number;
  status: Extract<ToParent, { type: "status" }> | null;
  idle: boolean;
  final: boolean;
  kill(): void;
}

/** The soft limit on open files of this process, from /proc (null where unknown). */
export function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function runSim(sc: Scenario, opts: RunOptions = {}): Promise<SimResults> {
  if (sc.server.ca && !fs.existsSync(sc.server.ca)) throw new Error(`server.ca: ${sc.server.ca} not found`);
  const planned = plannedArrivals(sc);
  const count = Math.max(1, sc.run.workers);
  const out = opts.stream ?? process.stderr;
  const mode = opts.progress === "auto" || opts.progress === undefined ? (out.isTTY ? "tty" : "lines") : opts.progress;
  const limit = openFilesLimit();
  const share = Math.ceil(planned / count);
  if (limit !== null && share > limit - 64) {
    out.write(
      `xfarm sim: warning: ${share} users per worker, over this process's open-file limit (${limit}); use more workers (run.workers / --workers)\n`,
    );
  }
  const users = (i: number) => Math.max(0, Math.ceil((planned - i) / count));

  const merger = new Merger(Array.from({ length: count }, (_, i) => i));
  const handles: WorkerHandle[] = [];
  let finish: (how: SimResults["ended_by"]) => void = () => {};
  const done = new Promise<SimResults["ended_by"]>((resolve) => (finish = resolve));
  let endedBy: SimResults["ended_by"] | null = null;
  const fatal: string[] = [];

  const points = sc.actions.filter((a) => a.type === "sync").length;
  const syncTimeouts = sc.actions.flatMap((a) => (a.type === "sync" ? [a.timeout] : []));
  const syncs: SyncOutcome[] = Array.from({ length: points }, (_, point) => ({ point, released_s: null, complete: false, reached: 0, missed: 0 }));
  const allThere: (number | null)[] = new Array(points).fill(null);
  let t0 = 0;

  let stoppedAt = 0;
  const stopAll = (how: SimResults["ended_by"]) => {
    if (endedBy) return;
    endedBy = how;
    stoppedAt = Date.now();
    for (const h of handles) if (!h.final) h.send({ type: "stop" });
  };

  const checkSyncs = () => {
    const now = Date.now();
    let sent = 0;
    let received = 0;
    for (const h of handles) {
      sent += h.status?.sent ?? 0;
      received += h.status?.received ?? 0;
    }
    for (let p = 0; p < points; p++) {
      const s = syncs[p]!;
      if (s.released_s !== null) continue;
      s.reached = handles.reduce((a, h) => a + (h.status?.reached[p] ?? 0), 0);
      s.missed = handles.reduce((a, h) => a + (h.status?.missed[p] ?? 0), 0);
      if (s.reached + s.missed < planned) break;
      allThere[p] ??= now;
      const delivered = received >= sent;
      if (!delivered && now - allThere[p]! < syncTimeouts[p]! * 1000) break;
      s.released_s = Math.round(now - t0) / 1000;
      s.complete = delivered;
      for (const h of handles) if (!h.final) h.send({ type: "release", point: p });
      opts.onSync?.(s);
    }
  };

  let printed = false;
  // Totals up to the row shown (a worker's later reports may already be in).
  const upTo = { arrived: 0, redirects: 0, errors: 0 };
  const show = (rows: ReturnType<Merger["add"]>) => {
    for (const row of rows) {
      upTo.arrived += row.arrived;
      upTo.redirects += row.redirects;
      upTo.errors += row.errors;
      if (mode === "none") continue;
      const line = progressLine(row, upTo, planned);
      if (mode === "tty") out.write(`\r${line}\x1b[K`);
      else out.write(line + "\n");
      printed = true;
    }
  };

  const onMessage = (h: WorkerHandle, m: ToParent) => {
    switch (m.type) {
      case "ready":
        h.baseRss = m.rss;
        return;
      case "status":
        h.status = m;
        if (m.up.length || m.down.length || m.unconfirmed.length) {
          for (const o of handles) if (o !== h && !o.final) o.send({ type: "online", up: m.up, down: m.down, unconfirmed: m.unconfirmed });
        }
        return checkSyncs();
      case "tick":
        h.peakRss = Math.max(h.peakRss, m.report.rss);
        return show(merger.add(h.index, m.report));
      case "idle":
        h.idle = true;
        if (handles.every((x) => x.idle)) stopAll("done");
        return;
      case "final":
        h.final = true;
        h.peakRss = Math.max(h.peakRss, m.report.rss);
        show(merger.add(h.index, m.report, true));
        if (handles.every((x) => x.final)) finish(endedBy ?? "done");
        return;
      case "fatal":
        fatal.push(`worker ${h.index}: ${m.message}`);
        return stopAll("error");
    }
  };

  const ready: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    if (sc.run.workers === 0) {
      // In this process: the same messages, without IPC.
      const h: WorkerHandle = {
        index: i, pid: process.pid, users: users(i), baseRss: process.memoryUsage().rss, peakRss: 0, status: null, idle: false, final: false,
        send: (m) => setImmediate(() => worker.handle(m)),
        kill: () => {},
      };
      const worker = new SimWorker((m) => setImmediate(() => onMessage(h, m)));
      handles.push(h);
      continue;
    }
    const child: ChildProcess = fork(WORKER_MAIN, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv: [] });
    const h: WorkerHandle = {
      index: i, pid: child.pid ?? 0, users: users(i), baseRss: 0, peakRss: 0, status: null, idle: false, final: false,
      send: (m) => {
        if (child.connected) child.send(m);
      },
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      },
    };
    handles.push(h);
    ready.push(
      new Promise((resolve, reject) => {
        child.once("message", (m: ToParent) => {
          if (m.type !== "ready") return reject(new Error(`worker ${i} said ${m.type} before ready`));
          onMessage(h, m);
          child.on("message", (msg: ToParent) => onMessage(h, msg));
          resolve();
        });
        child.once("error", reject);
        child.once("exit", (code, signal) => {
          reject(new Error(`worker ${i} exited (${signal ?? code}) before it was ready`));
          if (!h.final) {
            h.final = true;
            if (code !== 0 || signal) {
              fatal.push(`worker ${i} (pid ${h.pid}) exited with ${signal ?? code}`);
              stopAll("error");
            }
            show(merger.gone(i));
            if (handles.every((x) => x.final)) finish(endedBy ?? "error");
          }
        });
      }),
    );
  }

  const onSigint = () => {
    if (endedBy) {
      for (const h of handles) h.kill();
      process.exit(130);
    }
    stopAll("interrupt");
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  const onAbort = () => stopAll("interrupt");
  opts.signal?.addEventListener("abort", onAbort);
  // Sent once the workers have started (an earlier abort is passed on with the start).
  const onEndChats = () => {
    if (t0) for (const h of handles) if (!h.final) h.send({ type: "end-chats" });
  };
  opts.endChats?.addEventListener("abort", onEndChats);
  let deadline: NodeJS.Timeout | null = null;
  let syncTimer: NodeJS.Timeout | null = null;
  let hardStop: NodeJS.Timeout | null = null;
  try {
    try {
      await Promise.all(ready);
    } catch (err) {
      for (const h of handles) h.kill();
      throw err;
    }
    t0 = Date.now() + 50;
    for (const h of handles) h.send({ type: "start", scenario: sc, index: h.index, workers: count, t0 });
    if (opts.endChats?.aborted) onEndChats();
    deadline = setTimeout(() => stopAll("duration"), t0 - Date.now() + sc.run.duration * 1000);
    syncTimer = setInterval(checkSyncs, 200);
    // Workers that do not answer a stop within a while are killed; the run still reports.
    const watchdog = new Promise<SimResults["ended_by"]>((resolve) => {
      hardStop = setInterval(() => {
        if (endedBy && Date.now() > stoppedAt + 15_000) {
          for (const h of handles) {
            if (h.final) continue;
            fatal.push(`worker ${h.index} did not finish; killed`);
            h.final = true;
            h.kill();
            show(merger.gone(h.index));
          }
          resolve(endedBy);
        }
      }, 1000);
    });
    const how = await Promise.race([done, watchdog]);
    endedBy ??= how;
  } finally {
    if (deadline) clearTimeout(deadline);
    if (syncTimer) clearInterval(syncTimer);
    if (hardStop) clearInterval(hardStop);
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
    opts.signal?.removeEventListener("abort", onAbort);
    opts.endChats?.removeEventListener("abort", onEndChats);
  }
  show(merger.flush());
  if (mode === "tty" && printed) out.write("\n");
  const results = buildResults({
    scenario: sc,
    planned,
    started: t0,
    finished: Date.now(),
    endedBy: fatal.length ? "error" : endedBy!,
    merger,
    syncs,
    workers: handles.map((h) => ({ pid: h.pid, users: h.users, baseRss: h.baseRss, peakRss: h.peakRss })),
  });
  if (fatal.length) for (const f of fatal) out.write(`xfarm sim: ${f}\n`);
  return results;
}



