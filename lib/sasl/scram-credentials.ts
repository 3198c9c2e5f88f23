// SCRAM credentials (RFC 5802 §3): what the store keeps instead of a
// password, how to make them and how to check a plaintext password (SASL
// PLAIN) against them. Also the hash primitives scram-server.ts shares.

import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import type { Credentials, ScramHash, ScramKeys } from "../../xdb-sql/store.js";

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

// SASLprep (RFC 4013) is a stringprep profile whose full tables (unassigned
// code points, bidi rules) would dwarf this module. We do the part that
// matters in practice: the two mapping tables, NFKC, and the prohibited
// output tables (controls, private use, non-characters, surrogates, ...).
// Not done: the bidi check (RFC 3454 §6) and refusing unassigned code points.

// RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// RFC 3454 B.1: commonly mapped to nothing.
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;

// Code point ranges of RFC 3454 tables C.2.1-C.9 (C.1.2 is already mapped
// away; C.4's per-plane xFFFE/xFFFF are tested arithmetically below).
const PROHIBITED: ReadonlyArray<readonly [number, number]> = [
  [0x0000, 0x001f], [0x007f, 0x009f], // C.2.1, C.2.2: controls
  [0x0340, 0x0341], // C.8: deprecated tone marks
  [0x06dd, 0x06dd], [0x070f, 0x070f], [0x180e, 0x180e], // C.2.2
  [0x200c, 0x200f], // C.2.2 joiners, C.8 direction marks
  [0x2028, 0x202e], // C.2.2 separators, C.8 embedding controls
  [0x2060, 0x2063], [0x206a, 0x206f], // C.2.2, C.8
  [0x2ff0, 0x2ffb], // C.7: ideographic description
  [0xd800, 0xdfff], // C.5: lone surrogates
  [0xe000, 0xf8ff], // C.3: private use
  [0xfdd0, 0xfdef], // C.4: non-characters
  [0xfeff, 0xfeff], // C.2.2
  [0xfff9, 0xfffd], // C.2.2, C.6
  [0x1d173, 0x1d17a], // C.2.2: musical controls
  [0xe0001, 0xe0001], [0xe0020, 0xe007f], // C.9: tags
  [0xf0000, 0x10ffff], // C.3: private use planes
];

function prohibited(cp: number): boolean {
  if ((cp & 0xfffe) === 0xfffe) return true; // C.4: U+xFFFE, U+xFFFF
  return PROHIBITED.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/**
 * SASLprep of a stored string (see the note above for what is left out).
 * Throws a RangeError on a prohibited character.
 */
export function saslprep(input: string): string {
  const out = input
    .replace(NON_ASCII_SPACE, " ")
    .replace(MAPPED_TO_NOTHING, "")
    .normalize("NFKC");
  for (const ch of out) {
    const cp = ch.codePointAt(0)!;
    if (prohibited(cp)) {
      throw new RangeError(`prohibited character U+${cp.toString(16).toUpperCase().padStart(4, "0")}`);
    }
  }
  return out;
}

/** SaltedPassword = Hi(Normalize(password), salt, i), the slow step. */
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
 * The SCRAM keys for one hash with a given salt. deriveCredentials is what
 * account code wants; this one exists so the RFC test vectors can be rebuilt.
 * Throws a RangeError when the password fails SASLprep.
 */
export async function deriveKeys(
  password: string,
  hash: ScramHash,
  salt: Buffer,
  iterations: number = SCRAM_ITERATIONS,
): Promise<ScramKeys> {
  checkIterations(iterations);
  const salted = await saltedPassword(saslprep(password), hash, salt, iterations);
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
  if (saslprep(password) === "") throw new RangeError("empty password");
  const [sha1, sha256] = await Promise.all([
    deriveKeys(password, "SHA-1", randomBytes(SALT_BYTES), iterations),
    deriveKeys(password, "SHA-256", randomBytes(SALT_BYTES), iterations),
  ]);
  return { "SHA-1": sha1, "SHA-256": sha256 };
}

/**
 * Whether `password` matches the stored keys (for SASL PLAIN): recomputes
 * StoredKey and compares in constant time. A password that fails SASLprep
 * cannot have been stored, so it is simply wrong.
 */
export async function verifyPassword(password: string, keys: ScramKeys, hash: ScramHash): Promise<boolean> {
  let prepared: string;
  try {
    prepared = saslprep(password);
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
  return { ...creds, [missing]: await deriveKeys(password, missing, randomBytes(SALT_BYTES), present.iterations) };
}
