// Test farms: sim/local-farm.ts with the test certificate that the test
// processes trust (vitest.config.ts).
import { Farm as LocalFarm, type FarmOptions } from "../../sim/local-farm.js";

export type Farm = LocalFarm;

export const Farm = {
  create(opts: FarmOptions = {}): Promise<LocalFarm> {
    return LocalFarm.create({ tls: { cert: process.env.XFARM_TEST_CERT!, key: process.env.XFARM_TEST_KEY! }, ...opts });
  },
};
