// SASL PLAIN (RFC 4616): message = [authzid] NUL authcid NUL passwd.
// Only the parsing lives here; the caller looks the account up and calls
// verifyPassword (scram-credentials.ts), and must only offer PLAIN over TLS.

import { decodeUtf8, SaslError } from "./errors.js";

export { SaslError } from "./errors.js";

export interface PlainMessage {
  /** "" when the client did not ask for a different identity. */
  authzid: string;
  authcid: string;
  password: string;
}

/** Parses a PLAIN message; throws SaslError("malformed-request") on a bad one. */
export function parsePlain(msg: Buffer): PlainMessage {
  const parts = decodeUtf8(msg).split("\0");
  if (parts.length !== 3) throw new SaslError("malformed-request", "PLAIN needs exactly two NULs");
  const [authzid, authcid, password] = parts as [string, string, string];
  if (authcid === "") throw new SaslError("malformed-request", "empty authcid");
  if (password === "") throw new SaslError("malformed-request", "empty password");
  return { authzid, authcid, password };
}
