// Which test file runs in which tier. `npm test` runs "main": every test file
// not named below. Each long suite has a tier of its own, run by its own
// script (README, "Tests"), each already a bounded version of a long command.
export const LONG_TIERS = {
  /** `npm run test:bench`: `xfarm bench --compare`, shrunk (xfarm, Prosody, ejabberd). */
  bench: ["test/bench.test.ts"],
  /**
   * `npm run test:faults`: the fault harness, every fault once against fresh farms, and the two
   * end-to-end tests whose length is the product's own failover timings: the router partition
   * (link silence, election, lease) and the rolling upgrade (each front end drained, stopped and
   * started under load).
   */
  faults: ["test/faults.test.ts", "test/e2e-router-partition.test.ts", "test/e2e-rolling-upgrade.test.ts"],
  /** `npm run test:soak`: the soak beside every kind of attack, for 18 s. */
  soak: ["test/soak.test.ts"],
} as const;

export type Tier = "main" | keyof typeof LONG_TIERS;

/** Every test file of a long tier. */
export const LONG_FILES: string[] = Object.values(LONG_TIERS).flat();
