import fs from "node:fs";
import path from "node:path";
import { generate } from "selfsigned";
import { defineConfig } from "vitest/config";
import { LONG_FILES, LONG_TIERS } from "./test/tiers.js";

// One certificate for every test farm, trusted by the test processes through
// NODE_EXTRA_CA_CERTS (read at process start, so it is set here, before the
// workers are forked): clients verify it as they would a real one.
const tlsDir = path.resolve(".vitest-tmp/tls");
const cert = path.join(tlsDir, "localhost.crt");
const key = path.join(tlsDir, "localhost.key");
if (!fs.existsSync(cert) || !fs.existsSync(key)) {
  fs.mkdirSync(tlsDir, { recursive: true });
  const pems = await generate([{ name: "commonName", value: "localhost" }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  } as Parameters<typeof generate>[1]);
  fs.writeFileSync(key, pems.private);
  fs.writeFileSync(cert, pems.cert);
}
process.env.NODE_EXTRA_CA_CERTS = cert;
// Test farms keep their files (SQLite, logs) in memory where Linux offers a roomy tmpfs (not a
// container's 64 MB): an fsync there costs nothing, and no test is about surviving a power cut.
// The SQLite code and its pragmas are the same.
const shm = fs.existsSync("/dev/shm") ? fs.statfsSync("/dev/shm") : null;
if (!process.env.XFARM_FARM_TMPDIR && shm && shm.bavail * shm.bsize > 2 ** 30) process.env.XFARM_FARM_TMPDIR = "/dev/shm";
process.env.XFARM_TEST_CERT = cert;
process.env.XFARM_TEST_KEY = key;

export default defineConfig({
  test: {
    pool: "forks",
    // Two files at a time: e2e tests mostly wait on real processes. Each worker has its own
    // ports (sim/free-ports.ts, VITEST_POOL_ID), so parallel farms never collide.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One project a tier (test/tiers.ts): `vitest run --project main` is `npm test`.
    projects: [
      { extends: true, test: { name: "main", include: ["test/**/*.test.ts"], exclude: LONG_FILES } },
      ...Object.entries(LONG_TIERS).map(([name, files]) => ({ extends: true as const, test: { name, include: [...files] } })),
    ],
  },
});
