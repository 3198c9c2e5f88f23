// SaltedPassword for simulated clients, cached per password, salt and
// iteration count, as real clients cache it (Conversations, Gajim). Against
// accounts made in bulk with one salt, or after a redirect, a login then
// costs the simulator two HMACs instead of thousands, and the machine's
// cores go to the server under test.
import type { SaltedPasswordFn } from "./scram-client.js";
import { saltedPassword } from "../lib/sasl/scram-credentials.js";

const CACHE_MAX = 4096;
const cache = new Map<string, Buffer>();

export const cachedSaltedPassword: SaltedPasswordFn = async (prepared, hash, salt, iterations) => {
  const key = `${hash}\0${iterations}\0${salt.toString("base64")}\0${prepared}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const value = await saltedPassword(prepared, hash, salt, iterations);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
};
