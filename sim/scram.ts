// SCRAM (RFC 5802) for simulated clients: lib/sasl/scram-client.ts's
// exchange, with the SaltedPassword cached per password, salt and
// iteration count, as real clients cache it (Conversations, Gajim). Against
// accounts made in bulk with one salt, or after a redirect, a login then
// costs the simulator two HMACs instead of thousands, and the machine's
// cores go to the server under test.
import { randomBytes } from "node:crypto";
import { digest, hmac, saltedPassword, saslprep } from "../lib/sasl/scram-credentials.js";
import type { ScramHash } from "../xdb-sql/store.js";

const GS2 = "n,,";
const CACHE_MAX = 4096;
const cache = new Map<string, Buffer>();

async function salted(password: string, hash: ScramHash, salt: string, iterations: number): Promise<Buffer> {
  const key = `${hash}\0${iterations}\0${salt}\0${password}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const value = await saltedPassword(saslprep(password), hash, Buffer.from(salt, "base64"), iterations);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
}

export class SimScram {
  private readonly bare: string;
  private readonly nonce: string;
  private serverSignature: Buffer | null = null;

  constructor(
    private readonly hash: ScramHash,
    username: string,
    private readonly password: string,
  ) {
    this.nonce = randomBytes(18).toString("base64");
    this.bare = `n=${username.replace(/=/g, "=3D").replace(/,/g, "=2C")},r=${this.nonce}`;
  }

  first(): string {
    return Buffer.from(GS2 + this.bare).toString("base64");
  }

  /** The client-final message (base64) for the server-first one (base64). */
  async final(serverFirstB64: string): Promise<string> {
    const text = Buffer.from(serverFirstB64, "base64").toString("utf8");
    const attrs = new Map(text.split(",").map((a) => [a[0], a.slice(2)]));
    const nonce = attrs.get("r");
    if (!nonce?.startsWith(this.nonce)) throw new Error("the server nonce does not extend ours");
    const iterations = Number(attrs.get("i"));
    if (!Number.isInteger(iterations) || iterations < 1) throw new Error("bad iteration count");
    const saltedPw = await salted(this.password, this.hash, attrs.get("s") ?? "", iterations);
    const clientKey = hmac(this.hash, saltedPw, "Client Key");
    const withoutProof = `c=${Buffer.from(GS2).toString("base64")},r=${nonce}`;
    const authMessage = `${this.bare},${text},${withoutProof}`;
    const signature = hmac(this.hash, digest(this.hash, clientKey), authMessage);
    const proof = Buffer.from(clientKey.map((x, i) => x ^ signature[i]!));
    this.serverSignature = hmac(this.hash, hmac(this.hash, saltedPw, "Server Key"), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`).toString("base64");
  }

  /** Whether the server-final message (base64) proves the server knows the keys. */
  verify(serverFinalB64: string): boolean {
    return this.serverSignature !== null && Buffer.from(serverFinalB64, "base64").toString("utf8") === `v=${this.serverSignature.toString("base64")}`;
  }
}
