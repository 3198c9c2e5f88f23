// Gives an idle process's young generation back to the system. V8 grows the
// young generation (new space) to 32 MB in a burst of logins or messages, and
// shrinks it only at a collection that sees a low allocation rate; an idle
// process allocates too little to collect at all, so it would keep those
// 32 MB for as long as it stays idle: a third of a c2s's memory per session
// at 19,000 idle ones (docs/bench.md). So after `seconds` of a nearly idle
// event loop, a process that holds a grown young generation collects once,
// and V8 releases it. That collection also compacts the old generation: the
// burst left its pages holding a few live objects each among freed ones,
// which V8 keeps (and the RSS with them) until it compacts, and it compacts
// only the most fragmented pages unless told. It is ejabberd's hibernation of
// idle sessions, for the whole process: a busy one is never interrupted, and
// an idle one collects once per burst.
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import type { Logger } from "./log.js";
import type { ProcessMetrics } from "./metrics/process-metrics.js";

/**
 * The shortest idle time that works: V8 judges the allocation rate over the
 * last 5 s of collections, so a collection sooner after a burst still sees
 * the burst's rate and keeps the young generation as it is.
 */
export const MIN_IDLE_SECONDS = 6;
/** The event loop's busy share under which a second counts as idle. */
const IDLE_SHARE = 0.02;
/**
 * A young generation larger than this has grown since start: V8 starts it
 * at 1 MB and gives it back down to that. The router's grows to 4 MB under
 * logins, the c2s's and sm's to 32.
 */
export const GROWN_BYTES = 1024 * 1024;
/**
 * Collections in a row that may leave the young generation grown before the
 * next waits RETRY_PERIODS times as long. One that keeps it is tried again
 * after RETRY_SECONDS of idleness, not `seconds`: the first collection after
 * the idle wait often keeps it (the burst still weighs in V8's rate), and the
 * one after, which sees only the first's quiet seconds, gives it back.
 */
const QUICK_TRIES = 3;
const RETRY_SECONDS = 2;
const RETRY_PERIODS = 10;
/**
 * Garbage made just before collecting. V8 shrinks the young generation at a
 * collection that sees a low allocation rate, but not at one that sees none
 * (its memory reducer's samples of an idle process can say exactly zero):
 * a few objects make the rate known, and low.
 */
const PRIMER_OBJECTS = 1024;
/** Where the primer's objects go for a moment: a store the compiler cannot leave out. */
const primer: object[] = [];

function prime(): void {
  for (let i = 0; i < PRIMER_OBJECTS; i++) primer.push({ i });
  primer.length = 0;
}

/** V8's own `gc()`, as `--expose-gc` would define it: set before the first context that should see it. */
function exposeGc(): () => void {
  const global = globalThis as { gc?: () => void };
  if (global.gc) return global.gc;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

let exposedGc: (() => void) | null = null;

/**
 * One full collection that compacts every page of the old generation (V8's
 * --compact-on-every-full-gc, for this collection only: a busy process's
 * collections stay V8's choice), after a few objects that make the
 * allocation rate known, and low, so that V8 also shrinks a grown young
 * generation; it may still keep it the first time.
 */
export function collectAndCompact(): void {
  exposedGc ??= exposeGc();
  prime();
  v8.setFlagsFromString("--compact-on-every-full-gc");
  try {
    exposedGc();
  } finally {
    v8.setFlagsFromString("--no-compact-on-every-full-gc");
  }
}

function spaceBytes(space: "new_space" | "old_space"): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === space)?.space_size ?? 0;
}

/** Bytes V8 holds for the young generation now. */
export function youngGenerationBytes(): number {
  return spaceBytes("new_space");
}

/** Bytes V8 holds for the old generation's objects now (its free space in them included). */
export function oldGenerationBytes(): number {
  return spaceBytes("old_space");
}

export interface IdleHeap {
  /** Collections done so far. */
  readonly collections: number;
  stop(): void;
}

/** Watches the event loop each second; `seconds` 0 watches nothing, and less than MIN_IDLE_SECONDS is that. */
export function releaseIdleHeap(seconds: number, log: Logger, metrics?: ProcessMetrics): IdleHeap {
  let collections = 0;
  // The young generation's size is among the default metrics: xfarm_nodejs_heap_space_size_total_bytes{space="new"}.
  metrics?.counter("xfarm_idle_heap_collections_total", "Collections run to give an idle process's grown young generation back to the system (config idle_gc).", () => collections);
  if (seconds <= 0) return { collections: 0, stop() {} };
  seconds = Math.max(seconds, MIN_IDLE_SECONDS);
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let idleFor = 0;
  let wait = seconds;
  let tries = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    idleFor = busy < IDLE_SHARE ? idleFor + 1 : 0;
    if (idleFor < wait) return;
    const before = youngGenerationBytes();
    if (before <= GROWN_BYTES) return;
    const started = performance.now();
    collectAndCompact();
    collections++;
    const after = youngGenerationBytes();
    idleFor = 0;
    tries = after > GROWN_BYTES ? tries + 1 : 0;
    wait = tries === 0 ? seconds : tries < QUICK_TRIES ? RETRY_SECONDS : seconds * RETRY_PERIODS;
    log.info({ youngBefore: before, youngAfter: after, oldAfter: oldGenerationBytes(), ms: Math.round(performance.now() - started) }, "idle: collected to give the grown young generation back");
  }, 1_000);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}
