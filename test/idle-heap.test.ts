// An idle process gives back the young generation a burst grew (lib/idle-heap.ts,
// config idle_gc): run in a process of its own, whose event loop this test
// does not share, with the module as built.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { GROWN_BYTES } from "../lib/idle-heap.js";

const IDLE_HEAP = fileURLToPath(new URL("../dist/lib/idle-heap.js", import.meta.url));
const LOG = fileURLToPath(new URL("../dist/lib/log.js", import.meta.url));

/** Grows the young generation with a burst of short-lived objects, then waits, querying the heap, until the module collected and it shrank. */
const script = (seconds: number) => `
import { oldGenerationBytes, releaseIdleHeap, youngGenerationBytes } from ${JSON.stringify(IDLE_HEAP)};
import { createLogger } from ${JSON.stringify(LOG)};
const idle = releaseIdleHeap(${seconds}, createLogger("t", "silent", "json"));
const started = youngGenerationBytes();
let keep = [];
for (let i = 0; i < 3_000_000; i++) { keep.push({ i, s: "x" + i }); if (keep.length > 100_000) keep = []; }
keep = null;
// Objects that live long enough to reach the old generation, then 7 in 8 of them freed: pages of holes.
let held = [];
for (let i = 0; i < 600_000; i++) held.push({ i, s: "y" + i, a: [i] });
held = held.filter((_, i) => i % 8 === 0);
const grown = youngGenerationBytes();
const oldGrown = oldGenerationBytes();
const deadline = Date.now() + 45_000;
while ((idle.collections === 0 || youngGenerationBytes() >= grown) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
console.log(JSON.stringify({ started, grown, after: youngGenerationBytes(), oldGrown, oldAfter: oldGenerationBytes(), held: held.length, collections: idle.collections }));
idle.stop();
`;

async function run(seconds: number): Promise<{ started: number; grown: number; after: number; oldGrown: number; oldAfter: number; collections: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script(seconds)], { timeout: 60_000 });
  return JSON.parse(stdout);
}

describe("idle heap", () => {
  it("collects once after the process is idle: the young generation shrinks back and the old one is compacted", async () => {
    const r = await run(6);
    const seen = JSON.stringify(r);
    expect(r.grown, seen).toBeGreaterThan(GROWN_BYTES);
    expect(r.after, seen).toBeLessThanOrEqual(GROWN_BYTES);
    expect(r.collections, seen).toBeGreaterThanOrEqual(1);
    // The old generation compacted: its pages of holes given back, not kept around the survivors.
    expect(r.oldAfter, seen).toBeLessThan(r.oldGrown / 2);
  }, 70_000);
});
