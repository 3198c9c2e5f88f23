// Keys for an account that does not exist, so that a login attempt on it
// costs and shows what one on a real account does: SCRAM shows the same salt
// and iteration count on every attempt (a fresh salt each time would give the
// game away), and PLAIN runs the same PBKDF2 before it fails. No password
// matches the random keys.
import { createHmac, randomBytes } from "node:crypto";
import { hashSize, SALT_BYTES, SCRAM_ITERATIONS, type ScramHash, type ScramKeys } from "../../lib/sasl/scram-credentials.js";

const PROCESS_FAKE_SECRET = randomBytes(32);

export interface FakeKeyOptions {
  /**
   * Secret from which unknown users' fake salts are derived. Give every c2s
   * of a farm the same one so a probe sees the same salt whichever node it
   * reaches; by default one random secret per process.
   */
  secret?: Buffer;
  /** The iteration count real accounts use. */
  iterations?: number;
}

export function fakeKeys(hash: ScramHash, username: string, options: FakeKeyOptions = {}): ScramKeys {
  const salt = createHmac("sha256", options.secret ?? PROCESS_FAKE_SECRET).update(`${hash}\0${username}`).digest().subarray(0, SALT_BYTES);
  const size = hashSize(hash);
  return {
    salt: Buffer.from(salt),
    iterations: options.iterations ?? SCRAM_ITERATIONS,
    storedKey: randomBytes(size),
    serverKey: randomBytes(size),
  };
}
