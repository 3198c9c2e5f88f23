// The c2s certificate: the configured PEM files, or a self-signed one made
// on first start so that a newcomer's farm speaks TLS with no set-up.
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { generate } from "selfsigned";
import type { Config } from "../lib/config.js";
import type { Logger } from "../lib/log.js";

export interface TlsCredentials {
  /** For STARTTLS, where a socket is upgraded in place. */
  context: tls.SecureContext;
  /** For the direct-TLS listener. */
  options: tls.SecureContextOptions;
}

export async function loadTlsCredentials(config: Config, log: Logger): Promise<TlsCredentials> {
  let { tls_cert: certFile, tls_key: keyFile } = config.c2s;
  if (!certFile || !keyFile) {
    const dir = path.join(config.data_dir, "tls");
    certFile = path.join(dir, "xfarm.crt");
    keyFile = path.join(dir, "xfarm.key");
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) await generateSelfSigned(config.domains, certFile, keyFile, log);
  }
  const options: tls.SecureContextOptions = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), minVersion: "TLSv1.2" };
  return { context: tls.createSecureContext(options), options };
}

async function generateSelfSigned(domains: string[], certFile: string, keyFile: string, log: Logger): Promise<void> {
  fs.mkdirSync(path.dirname(certFile), { recursive: true });
  // ECDSA P-256: as strong as RSA-3072, and its handshake signature costs the
  // front end a small fraction of an RSA-2048 one, the bulk of a TLS login.
  const pems = await generate([{ name: "commonName", value: domains[0]! }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [{ name: "subjectAltName", altNames: domains.map((d) => ({ type: 2 as const, value: d })) }],
  } as Parameters<typeof generate>[1]);
  // Written key first, both with exclusive creation, so two processes starting at once cannot mix halves.
  try {
    fs.writeFileSync(keyFile, pems.private, { mode: 0o600, flag: "wx" });
    fs.writeFileSync(certFile, pems.cert, { flag: "wx" });
    log.warn({ certFile, domains }, "generated a self-signed certificate; configure c2s.tls_cert and c2s.tls_key for production");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}
