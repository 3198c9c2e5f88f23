// The c2s certificate: the configured PEM files, or a self-signed one made
// on first start so that a newcomer's farm speaks TLS with no set-up; read
// again on reload() (SIGHUP) for new handshakes, while open connections keep
// the one they were made with.
// Shared code: the c2s loads it, and `xfarm start` (deploy/supervisor.ts)
// makes the self-signed one once before its front ends start.
import { createPrivateKey, X509Certificate } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { generate } from "selfsigned";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import { StartupFailure } from "./process-lifecycle.js";

/**
 * Mozilla's "intermediate" TLS 1.2 suites without DHE: forward secrecy by
 * ECDHE, AEAD ciphers only (AES-GCM, ChaCha20-Poly1305), so no CBC, SHA-1
 * MAC, CCM8 or ARIA. TLS 1.3 keeps OpenSSL's defaults (all AEAD).
 */
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export class TlsCredentials {
  private constructor(
    private readonly certFile: string,
    private readonly keyFile: string,
    /** For new handshakes, on either port. */
    public context: tls.SecureContext,
    private readonly log: Logger,
  ) {}

  /** Reads the files again; a file that does not load keeps the certificate in use, and says why. Returns whether the new one is in use. */
  reload(): boolean {
    try {
      const { context, certificate } = readContext(this.certFile, this.keyFile);
      this.context = context;
      this.log.info({ certFile: this.certFile, ...certificate }, "TLS certificate reloaded");
      return true;
    } catch (err) {
      this.log.error({ certFile: this.certFile, keyFile: this.keyFile, err: (err as Error).message }, "TLS certificate not reloaded; the previous one stays in use");
      return false;
    }
  }

  static async load(config: Config, log: Logger): Promise<TlsCredentials> {
    let { tls_cert: certFile, tls_key: keyFile } = config.c2s;
    if (!certFile || !keyFile) {
      const dir = path.join(config.data_dir, "tls");
      certFile = path.join(dir, "xfarm.crt");
      keyFile = path.join(dir, "xfarm.key");
      if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) await generateSelfSigned(config.domains, certFile, keyFile, log);
    }
    return new TlsCredentials(certFile, keyFile, readContext(certFile, keyFile).context, log);
  }
}

/**
 * Throws when a file is missing or unreadable, or the key does not fit the certificate: a StartupFailure
 * naming the key to fix (c2s.tls_cert or c2s.tls_key), which stops a front end that starts with it.
 */
function readContext(certFile: string, keyFile: string): { context: tls.SecureContext; certificate: { fingerprint256: string; validTo: string } } {
  const cert = attempt("c2s.tls_cert", `cannot read the certificate ${certFile}`, () => fs.readFileSync(certFile));
  const key = attempt("c2s.tls_key", `cannot read the key ${keyFile}`, () => fs.readFileSync(keyFile));
  const x509 = attempt("c2s.tls_cert", `${certFile} is not a PEM certificate`, () => new X509Certificate(cert));
  const privateKey = attempt("c2s.tls_key", `${keyFile} is not a PEM private key`, () => createPrivateKey(key));
  if (!x509.checkPrivateKey(privateKey)) throw new StartupFailure("c2s.tls_key", `the key ${keyFile} does not belong to the certificate ${certFile}`);
  const context = tls.createSecureContext({ cert, key, minVersion: "TLSv1.2", ciphers: TLS12_CIPHERS });
  return { context, certificate: { fingerprint256: x509.fingerprint256, validTo: x509.validTo } };
}

function attempt<T>(key: string, what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new StartupFailure(key, `${what}: ${(err as Error).message}`);
  }
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
