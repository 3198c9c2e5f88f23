// Random identifiers and nonces from a pooled CSPRNG buffer: one
// randomFillSync call per 4 KiB instead of one per value. A login asks for
// several (stream ids, the SCRAM nonce, a resource) and each randomBytes
// call costs microseconds of fixed overhead. The bytes are the same
// CSPRNG's; each is handed out once (Node's randomUUID pools the same way).
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

function take(bytes: number): number {
  if (bytes > POOL_BYTES) throw new RangeError(`at most ${POOL_BYTES} random bytes at once`);
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += bytes;
  return at;
}

/** `bytes` random bytes as hex. */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString("hex", at, at + bytes);
}

/** `bytes` random bytes as base64. */
export function randomBase64(bytes: number): string {
  const at = take(bytes);
  return pool.toString("base64", at, at + bytes);
}
