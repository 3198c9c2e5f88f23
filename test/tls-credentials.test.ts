// Certificate reload (SIGHUP): new handshakes get the new certificate, and a
// file that does not load keeps the one in use.
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { generate } from "selfsigned";
import { afterAll, describe, expect, it } from "vitest";
import { TlsCredentials } from "../lib/tls-credentials.js";
import { loadConfig } from "../lib/config.js";
import { createLogger } from "../lib/log.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-tls-"));
const certFile = path.join(dir, "c2s.crt");
const keyFile = path.join(dir, "c2s.key");

async function pems(): Promise<{ cert: string; key: string; fingerprint: string }> {
  const p = await generate([{ name: "commonName", value: "localhost" }], { keyType: "ec", curve: "P-256", algorithm: "sha256" } as Parameters<typeof generate>[1]);
  return { cert: p.cert, key: p.private, fingerprint: new X509Certificate(p.cert).fingerprint256 };
}

/** The certificate a new client is shown, through a TLS server socket made with `context`. */
async function presented(creds: TlsCredentials): Promise<string> {
  const server = net.createServer((raw) => new tls.TLSSocket(raw, { isServer: true, secureContext: creds.context }).on("error", () => {}));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise((resolve, reject) => {
      const c = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false }, () => {
        resolve(c.getPeerX509Certificate()!.fingerprint256);
        c.destroy();
      });
      c.on("error", reject);
    });
  } finally {
    server.close();
  }
}

describe("TlsCredentials", () => {
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reloads the files for new handshakes, and keeps the old certificate when the new files do not load", async () => {
    const first = await pems();
    fs.writeFileSync(certFile, first.cert);
    fs.writeFileSync(keyFile, first.key);
    const config = loadConfig(null, { XFARM_C2S_TLS_CERT: certFile, XFARM_C2S_TLS_KEY: keyFile, XFARM_DATA_DIR: dir });
    const creds = await TlsCredentials.load(config, createLogger("test", "silent"));
    expect(await presented(creds)).toBe(first.fingerprint);

    fs.writeFileSync(certFile, "not a certificate");
    expect(creds.reload()).toBe(false);
    expect(await presented(creds)).toBe(first.fingerprint);

    // A renewal half done: the new certificate, the old key.
    const second = await pems();
    fs.writeFileSync(certFile, second.cert);
    expect(creds.reload()).toBe(false);
    expect(await presented(creds)).toBe(first.fingerprint);

    fs.writeFileSync(keyFile, second.key);
    expect(creds.reload()).toBe(true);
    expect(await presented(creds)).toBe(second.fingerprint);
  });
});
