// SASLprep (RFC 4013), by @mongodb-js/saslprep: its full stringprep tables
// (Unicode 3.2), bidi check included. Stored strings and queries differ as
// RFC 3454 §7 says: a password to store may not hold unassigned code points;
// one a client sends may, and then matches nothing stored.
import saslprepLib from "@mongodb-js/saslprep";
import { localpart } from "../jid.js";

/** SASLprep of a password to store. Throws a RangeError when it fails. */
export function saslprepStored(input: string): string {
  try {
    return saslprepLib(input);
  } catch (err) {
    throw new RangeError(`the password fails SASLprep (RFC 4013): ${(err as Error).message.replace(/, see .*$/, "")}`);
  }
}

/**
 * Printable ASCII is its own SASLprep: RFC 4013 maps and prohibits nothing
 * there but the control characters, NFKC leaves it as it is, and it holds no
 * RandALCat for the bidi check. Every login's username and password are
 * prepared, and the library's tables cost a login some 2 % of its front end.
 */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** SASLprep of a string a client sent; null when it fails. */
export function saslprepQuery(input: string): string | null {
  if (PRINTABLE_ASCII.test(input)) return input;
  try {
    return saslprepLib(input, { allowUnassigned: true });
  } catch {
    return null;
  }
}

/**
 * The localpart (RFC 7622) a SASL username names. Clients that SASLprep the
 * username (slixmpp) and clients that do not (xmpp.js) reach the same
 * account: SASLprep first, unless it fails where the localpart profile
 * (which allows more bidi strings) does not.
 */
export function saslLocalpart(username: string): string | null {
  return localpart(saslprepQuery(username) ?? username);
}
