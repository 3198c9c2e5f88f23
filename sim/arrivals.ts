// When users arrive: Tsung's arrival phases (a rate for a duration, one after
// the other) capped by the user count. The schedule is computed the same way
// by the parent and by every worker (seeded), so arrival k is the same
// moment everywhere; worker w takes the arrivals k with k % workers == w.
// Where each arrives first is as reproducible (firstPort).

/** How user k picks the port it connects to first (server.spread). */
export type Spread = "turn" | "random";

/** How arrivals are spaced within a phase (run.interarrival). */
export type Interarrival = "uniform" | "poisson";

/**
 * What the schedule reads of a scenario. Spelled out here rather than taken
 * from scenario.ts's Scenario, which has these fields: scenario.ts checks a
 * scenario with plannedArrivals, so importing it back would be a cycle.
 */
interface Plan {
  server: { ports: readonly number[]; spread: Spread };
  arrival: readonly { rate: number; duration: number }[];
  users: { count: number };
  run: { duration: number; seed: number; interarrival: Interarrival };
}

/** A small seeded PRNG (mulberry32): the same seed gives every worker the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The port user k connects to first: in turn (round-robin DNS), or drawn at
 * random, as clients pick among SRV records of equal weight; the draw is
 * user k's own, from run.seed, so it does not depend on the worker.
 */
export function firstPort(s: Pick<Plan, "server" | "run">, k: number): number {
  const { ports, spread } = s.server;
  const i = spread === "random" ? Math.floor(prng(Math.imul(s.run.seed + 1, 0x85ebca6b) + k)() * ports.length) : k % ports.length;
  return ports[i]!;
}

/**
 * Milliseconds from the run's start of every arrival, ascending: evenly
 * spaced within each phase ("uniform"), or with exponential gaps
 * ("poisson", as Tsung does). At most users.count, and only those before
 * run.duration.
 */
export function arrivalTimes(s: Pick<Plan, "arrival" | "users" | "run">): Float64Array {
  const out: number[] = [];
  const limit = s.run.duration * 1000;
  const random = prng(s.run.seed);
  let start = 0;
  for (const phase of s.arrival) {
    const end = start + phase.duration * 1000;
    if (phase.rate > 0) {
      if (s.run.interarrival === "uniform") {
        const n = Math.floor(phase.rate * phase.duration + 1e-9);
        for (let j = 0; j < n && out.length < s.users.count; j++) out.push(start + (j * 1000) / phase.rate);
      } else {
        let t = start;
        for (;;) {
          t += (-Math.log(1 - random()) / phase.rate) * 1000;
          if (t >= end || out.length >= s.users.count) break;
          out.push(t);
        }
      }
    }
    start = end;
    if (out.length >= s.users.count) break;
  }
  return Float64Array.from(out.filter((t) => t < limit));
}

export function plannedArrivals(s: Pick<Plan, "arrival" | "users" | "run">): number {
  return arrivalTimes(s).length;
}
