import fs from "node:fs";
import path from "node:path";
import { generate } from "selfsigned";
import { defineConfig } from "vitest/config";

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
process.env.XFARM_TEST_CERT = cert;
process.env.XFARM_TEST_KEY = key;

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
