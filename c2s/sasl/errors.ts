// The SASL failure every mechanism throws, and the UTF-8 check they share.
// The c2s turns `condition` into the <failure/> child of RFC 6120 §6.5.

import { isUtf8 } from "node:buffer";

/** RFC 6120 §6.5's defined SASL error conditions. */
export type SaslCondition =
  | "aborted"
  | "account-disabled"
  | "credentials-expired"
  | "encryption-required"
  | "incorrect-encoding"
  | "invalid-authzid"
  | "invalid-mechanism"
  | "malformed-request"
  | "mechanism-too-weak"
  | "not-authorized"
  | "temporary-auth-failure";

export class SaslError extends Error {
  readonly condition: SaslCondition;

  /**
   * `message` is for logs only; it may say more than the client should hear,
   * so the c2s should send `condition` alone.
   */
  constructor(condition: SaslCondition, message?: string, options?: ErrorOptions) {
    super(message ?? condition, options);
    this.name = "SaslError";
    this.condition = condition;
  }
}

/**
 * Decodes a mechanism message as UTF-8, refusing invalid sequences: a lenient
 * decode would turn them into U+FFFD and compare equal to other garbage.
 * Buffer#toString, unlike TextDecoder's default, keeps a leading BOM.
 */
export function decodeUtf8(msg: Buffer): string {
  if (!isUtf8(msg)) throw new SaslError("malformed-request", "message is not valid UTF-8");
  return msg.toString("utf8");
}
