// SCRAM credentials (RFC 5802 §3): what the store keeps instead of a
// password, how to make them and how to check a plaintext password (SASL
// PLAIN) against them. Also the hash primitives the SCRAM server and client share.

import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { saslprepQuery, saslprepStored } from "./saslprep.js";

/** SCRAM keys for one hash (RFC 5802): never the password itself. */
export interface ScramKeys {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type ScramHash = "SHA-1" | "SHA-256";

/**
 * The keys an account holds: both hashes for accounts made here; an account
 * imported from another server may bring only one (Prosody exports SHA-1
 * only), and gets the other at its first PLAIN login.
 */
export type Credentials = Partial<Record<ScramHash, ScramKeys>>;

/** RFC 7677 §4: the minimum iteration count a server should use. */
export const SCRAM_ITERATIONS = 4096;

/** Bytes of fresh salt per hash. */
export const SALT_BYTES = 16;

const pbkdf2Async = promisify(pbkdf2);

const NODE_HASH: Record<ScramHash, { name: string; size: number }> = {
  "SHA-1": { name: "sha1", size: 20 },
  "SHA-256": { name: "sha256", size: 32 },
};

/** The digest length of `hash` in bytes. */
export function hashSize(hash: ScramHash): number {
  return NODE_HASH[hash].size;
}

/** H(data). */
export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_HASH[hash].name).update(data).digest();
}

/** HMAC(key, data). */
export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(NODE_HASH[hash].name, key).update(data).digest();
}

/** Equal lengths and bytes, in time independent of where they differ. */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * SaltedPassword = Hi(Normalize(password), salt, i), the slow step, on
 * libuv's threadpool. A CPU profile charges pbkdf2() some 0.4 ms of the
 * main thread per call on a loaded 2-core box: that is wall time, not CPU.
 * Queuing the job wakes a pool thread, which takes the main thread's core;
 * /proc/self/task/PID/schedstat around the call shows ~0.1 ms on CPU and
 * the rest waiting in the runqueue while the hash runs (PBKDF2's own cost,
 * paid once either way).
 */
export async function saltedPassword(prepared: string, hash: ScramHash, salt: Buffer, iterations: number): Promise<Buffer> {
  const { name, size } = NODE_HASH[hash];
  return pbkdf2Async(Buffer.from(prepared, "utf8"), salt, iterations, size, name);
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`bad SCRAM iteration count: ${iterations}`);
  }
}

/**
 * The SCRAM keys for one hash with a given salt, from a SASLprepped
 * password. deriveCredentials is what account code wants; this one exists
 * so the RFC test vectors can be rebuilt.
 */
export async function deriveKeys(
  prepared: string,
  hash: ScramHash,
  salt: Buffer,
  iterations: number = SCRAM_ITERATIONS,
): Promise<ScramKeys> {
  checkIterations(iterations);
  const salted = await saltedPassword(prepared, hash, salt, iterations);
  const clientKey = hmac(hash, salted, "Client Key");
  return {
    salt: Buffer.from(salt),
    iterations,
    storedKey: digest(hash, clientKey),
    serverKey: hmac(hash, salted, "Server Key"),
  };
}

/**
 * Fresh credentials for both hashes, each with its own random salt.
 * Throws a RangeError when the password is empty or fails SASLprep: the
 * account code should refuse such a password rather than store it.
 */
export async function deriveCredentials(password: string, iterations: number = SCRAM_ITERATIONS): Promise<Record<ScramHash, ScramKeys>> {
  const prepared = saslprepStored(password);
  if (prepared === "") throw new RangeError("empty password");
  const [sha1, sha256] = await Promise.all([
    deriveKeys(prepared, "SHA-1", randomBytes(SALT_BYTES), iterations),
    deriveKeys(prepared, "SHA-256", randomBytes(SALT_BYTES), iterations),
  ]);
  return { "SHA-1": sha1, "SHA-256": sha256 };
}

/**
 * Whether `password` matches the stored keys (for SASL PLAIN): recomputes
 * StoredKey and compares in constant time. A password that fails SASLprep
 * cannot have been stored, so it is simply wrong.
 */
export async function verifyPassword(password: string, keys: ScramKeys, hash: ScramHash): Promise<boolean> {
  const prepared = saslprepQuery(password);
  if (prepared === null) return false;
  try {
    checkIterations(keys.iterations);
  } catch {
    return false;
  }
  const salted = await saltedPassword(prepared, hash, keys.salt, keys.iterations);
  return safeEqual(digest(hash, hmac(hash, salted, "Client Key")), keys.storedKey);
}

/**
 * Credentials with keys for both hashes, deriving the missing one from the
 * password with the present one's iteration count; null when none is
 * missing. For imported accounts, which may bring one hash only.
 */
export async function completeCredentials(password: string, creds: Credentials): Promise<Credentials | null> {
  const present = creds["SHA-256"] ?? creds["SHA-1"];
  if (!present || (creds["SHA-1"] && creds["SHA-256"])) return null;
  const missing: ScramHash = creds["SHA-1"] ? "SHA-256" : "SHA-1";
  const prepared = saslprepQuery(password);
  if (prepared === null) return null;
  return { ...creds, [missing]: await deriveKeys(prepared, missing, randomBytes(SALT_BYTES), present.iterations) };
}
