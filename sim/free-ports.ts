// Free loopback ports for test farms.
import net from "node:net";

/**
 * Ports are drawn below Linux's ephemeral range (32768 up), so that no
 * outgoing connection's source port takes one that a farm process binds
 * later (a restarted one binds it again). Each vitest worker
 * (VITEST_POOL_ID 1, 2, …) draws from a slice of its own, so that test files
 * running in parallel can never pick the same ports; anything else draws from
 * the whole range.
 */
const LOW = 20_000;
const HIGH = 32_000;
const SLICE = 4_000;

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** The [from, to) range of base ports this process may draw from. */
export function portRange(poolId = process.env.VITEST_POOL_ID): [number, number] {
  const id = Number(poolId);
  if (!Number.isInteger(id) || id < 1) return [LOW, HIGH];
  const from = LOW + (id - 1) * SLICE;
  if (from + SLICE > HIGH) throw new Error(`vitest worker ${id}: only ${(HIGH - LOW) / SLICE} workers have ports of their own (maxWorkers)`);
  return [from, from + SLICE];
}

/** A base port such that base + each offset is free on 127.0.0.1. */
export async function freePortBase(offsets: number[]): Promise<number> {
  const [from, to] = portRange();
  const span = Math.max(...offsets) + 1;
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = from + Math.floor(Math.random() * (to - from - span));
    const ok = await Promise.all(offsets.map((o) => isFree(base + o)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error("no free ports found");
}
