// The client side of SCRAM (RFC 5802), for the simulator: the farm's own
// load generator must authenticate as real clients do.
import { randomBytes } from "node:crypto";
import { digest, hmac, saltedPassword, type ScramHash } from "../lib/sasl/scram-credentials.js";
import { saslprepQuery } from "../lib/sasl/saslprep.js";

const GS2 = "n,,";

/** Computes SaltedPassword (RFC 5802 §3) from the SASLprepped password; a client may cache it. */
export type SaltedPasswordFn = (prepared: string, hash: ScramHash, salt: Buffer, iterations: number) => Promise<Buffer>;

export class ScramClient {
  private readonly bare: string;
  private serverSignature: Buffer | null = null;

  constructor(
    private readonly hash: ScramHash,
    username: string,
    private readonly password: string,
    private readonly salted: SaltedPasswordFn = saltedPassword,
  ) {
    // RFC 5802 §5.1: the username SASLprepped, as the password.
    const name = (saslprepQuery(username) ?? username).replace(/=/g, "=3D").replace(/,/g, "=2C");
    this.bare = `n=${name},r=${randomBytes(18).toString("base64")}`;
  }

  first(): Buffer {
    return Buffer.from(GS2 + this.bare);
  }

  /** The client-final message for the server-first one. */
  async final(serverFirst: Buffer): Promise<Buffer> {
    const text = serverFirst.toString("utf8");
    const attrs = new Map(text.split(",").map((a) => [a[0], a.slice(2)]));
    const nonce = attrs.get("r");
    const clientNonce = this.bare.slice(this.bare.indexOf(",r=") + 3);
    if (!nonce?.startsWith(clientNonce)) throw new Error("SCRAM: the server nonce does not extend ours");
    const iterations = Number(attrs.get("i"));
    if (!Number.isInteger(iterations) || iterations < 1) throw new Error("SCRAM: bad iteration count");
    const prepared = saslprepQuery(this.password);
    if (prepared === null) throw new Error("SCRAM: the password fails SASLprep");
    const salted = await this.salted(prepared, this.hash, Buffer.from(attrs.get("s") ?? "", "base64"), iterations);
    const clientKey = hmac(this.hash, salted, "Client Key");
    const withoutProof = `c=${Buffer.from(GS2).toString("base64")},r=${nonce}`;
    const authMessage = `${this.bare},${text},${withoutProof}`;
    const signature = hmac(this.hash, digest(this.hash, clientKey), authMessage);
    const proof = Buffer.from(clientKey.map((x, i) => x ^ signature[i]!));
    this.serverSignature = hmac(this.hash, hmac(this.hash, salted, "Server Key"), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString("base64")}`);
  }

  /** Checks the server-final message, so the server proved it knows the keys too. */
  verify(serverFinal: Buffer): boolean {
    return this.serverSignature !== null && serverFinal.toString("utf8") === `v=${this.serverSignature.toString("base64")}`;
  }
}
