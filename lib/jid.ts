// JIDs per RFC 7622, in the form the farm keys them by: the localpart
// through PRECIS UsernameCaseMapped, the resourcepart through OpaqueString
// (lib/precis.ts), the domainpart through IDNA (UTS #46, as Node's URL
// parser does it) to U-labels, lowercased. Each part is 1 to 1023 octets of
// UTF-8 after that. Plain ASCII, what nearly every stanza carries, takes a
// fast path with the same outcome.
//
// A JID is parsed once, where it enters a process (parseJid), into a Jid:
// an immutable value of the normalized parts with its bare and full string
// forms, which the code that routes it passes on instead of the string.

import { isIPv6 } from "node:net";
import { domainToASCII, domainToUnicode } from "node:url";
import { opaqueString, usernameCaseMapped } from "./precis.js";

let normalized: (local: string, domain: string, resource: string) => Jid;

/**
 * A JID in its RFC 7622 form. Only parseJid and the methods below make one,
 * so its parts are always normalized: two Jids name the same entity exactly
 * when their `full` forms are equal (equals()).
 */
export class Jid {
  /** The localpart@domainpart, or the domainpart alone for a domain JID. */
  readonly bare: string;
  /** The bare form, then "/" and the resourcepart when there is one. */
  readonly full: string;

  private constructor(
    /** The localpart; "" for a domain JID. */
    readonly local: string,
    readonly domain: string,
    /** The resourcepart; "" for a bare JID. */
    readonly resource: string,
    /** The bare form, when the JID is made from another that has it: one string, not two equal ones. */
    bare?: string,
  ) {
    this.bare = bare ?? (local ? `${local}@${domain}` : domain);
    this.full = resource ? `${this.bare}/${resource}` : this.bare;
  }

  static {
    // parseJid's way to the private constructor: no other code makes a Jid of unchecked parts.
    normalized = (local, domain, resource) => new Jid(local, domain, resource);
  }

  /**
   * This JID without its resourcepart (itself when it has none). Made anew
   * at each call, which costs less than keeping it: a session's JID would
   * hold its bare form for the session's life.
   */
  withoutResource(): Jid {
    return this.resource ? new Jid(this.local, this.domain, "", this.bare) : this;
  }

  /** The domain JID of this JID's domainpart. */
  domainJid(): Jid {
    return this.local || this.resource ? new Jid("", this.domain, "") : this;
  }

  /** This JID's bare form with another resourcepart, normalized; null when `text` is not a valid one. */
  withResource(text: string): Jid | null {
    const resource = resourcepart(text);
    return resource === null ? null : new Jid(this.local, this.domain, resource, this.bare);
  }

  equals(other: Jid): boolean {
    return this.full === other.full;
  }

  /** The full form, for string contexts (a log line, a template). */
  toString(): string {
    return this.full;
  }

  toJSON(): string {
    return this.full;
  }
}

/** RFC 7622 §3.1: the most octets of UTF-8 in each part. */
export const MAX_JID_PART = 1023;
// Longer input is refused before any mapping, so nobody makes a process map
// megabytes: mapping shortens honest input, but never to a quarter.
const MAX_INPUT = 4 * MAX_JID_PART;

// Plain ASCII that needs no more than lowercasing: printable, without the
// space (not in IdentifierClass) and the characters below.
const ASCII_LOCAL = /^[!#-%(-.0-9;=?A-~]+$/;
const ASCII_RESOURCE = /^[\x20-\x7e]+$/;
// RFC 7622 §3.3.1: the characters a localpart must not hold besides those
// its PRECIS profile refuses.
const LOCAL_EXCLUDED = /["&'/:<>@]/;

/** Parses and normalizes a JID; null when it is not a valid JID. */
export function parseJid(text: string): Jid | null {
  if (!text) return null;
  let rest = text;
  let resource = "";
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const r = resourcepart(rest.slice(slash + 1));
    if (r === null) return null;
    resource = r;
    rest = rest.slice(0, slash);
  }
  let local = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    const l = localpart(rest.slice(0, at));
    if (l === null) return null;
    local = l;
    rest = rest.slice(at + 1);
  }
  const domain = domainpart(rest);
  return domain === null ? null : normalized(local, domain, resource);
}

/** A localpart as RFC 7622 §3.3 has it; null when invalid. */
export function localpart(text: string): string | null {
  // In printable ASCII without space, UsernameCaseMapped only lowercases.
  if (ASCII_LOCAL.test(text)) return text.length <= MAX_JID_PART ? text.toLowerCase() : null;
  if (text.length > MAX_INPUT) return null;
  const out = usernameCaseMapped(text);
  return out !== null && octetsFit(out) && !LOCAL_EXCLUDED.test(out) ? out : null;
}

/** A resourcepart as RFC 7622 §3.4 has it; null when invalid. */
export function resourcepart(text: string): string | null {
  // Printable ASCII is an OpaqueString as it is.
  if (ASCII_RESOURCE.test(text)) return text.length <= MAX_JID_PART ? text : null;
  if (text.length > MAX_INPUT) return null;
  const out = opaqueString(text);
  return out !== null && octetsFit(out) ? out : null;
}

/** A domainpart as RFC 7622 §3.2 has it, in U-labels; null when invalid. */
export function domainpart(text: string): string | null {
  // §3.2: a final dot goes before anything else.
  const d = text.endsWith(".") ? text.slice(0, -1) : text;
  if (!d || d.length > MAX_INPUT) return null;
  if (d.charCodeAt(0) === 0x5b /* [ */) {
    return d.endsWith("]") && isIPv6(d.slice(1, -1)) ? d.toLowerCase() : null;
  }
  const plain = ldhDomain(d, false);
  if (plain !== undefined) return plain !== null && plain.length <= MAX_JID_PART ? shared(plain) : null;
  let out = idnaDomains.get(d);
  if (out === undefined) {
    out = idnaDomain(d);
    // Few domains, each on many stanzas: remembered, up to a bound.
    if (idnaDomains.size >= IDNA_REMEMBERED) idnaDomains.clear();
    if (d.length <= 255) idnaDomains.set(d, out);
  }
  return out;
}

/**
 * The last domain parsed: a domain equal to it is given as that same string.
 * Memory: most JIDs a process holds are of one domain, and each would hold
 * a copy of its own (some 30 bytes a session on the sm).
 */
let lastDomain = "";

function shared(domain: string): string {
  if (domain !== lastDomain) {
    // A copy of its own: one of 13 characters or more (V8's shortest slice) may be a slice of a stanza's text, and keep it.
    lastDomain = domain.length < 13 ? domain : Buffer.from(domain, "utf8").toString("utf8");
  }
  return lastDomain;
}

const IDNA_REMEMBERED = 1000;
const idnaDomains = new Map<string, string | null>();

function idnaDomain(d: string): string | null {
  // Mapping (width, case, NFC) and validation by UTS #46 (some 3 µs); then
  // every label must be an LDH label or an A-label, as RFC 5890 has them.
  const ascii = domainToASCII(d);
  if (!ascii || !ldhDomain(ascii, true)) return null;
  const out = domainToUnicode(ascii);
  return octetsFit(out) ? out : null;
}

/**
 * A domain of LDH labels (RFC 5890: letters, digits, hyphens, no hyphen first
 * or last, 1 to 63 octets), lowercased; null when it is not one; undefined
 * when IDNA must decide: non-ASCII, or a label with "--" in third and fourth
 * place (an A-label, or one reserved like it), which IDNA's output may hold
 * only as "xn--".
 */
function ldhDomain(d: string, idnaOutput: boolean): string | null | undefined {
  let start = 0;
  let upper = false;
  for (let i = 0; i <= d.length; i++) {
    const c = i < d.length ? d.charCodeAt(i) : 0x2e;
    if (c === 0x2e /* . */) {
      const n = i - start;
      if (n < 1 || n > 63 || d.charCodeAt(start) === 0x2d || d.charCodeAt(i - 1) === 0x2d) return null;
      if (n >= 4 && d.charCodeAt(start + 2) === 0x2d && d.charCodeAt(start + 3) === 0x2d) {
        if (!idnaOutput) return undefined;
        if (!d.startsWith("xn", start)) return null;
      }
      start = i + 1;
    } else if (c >= 0x41 && c <= 0x5a) {
      upper = true;
    } else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d)) {
      // (Node's IDNA would also take "%41" for "A", as URLs do.)
      return c >= 0x80 && !idnaOutput ? undefined : null;
    }
  }
  return upper ? d.toLowerCase() : d;
}

function octetsFit(s: string): boolean {
  // A UTF-16 unit is at most 3 octets: only long strings need counting.
  return s.length * 3 <= MAX_JID_PART || Buffer.byteLength(s) <= MAX_JID_PART;
}

/** The bare JID of a JID string, normalized; null if the string is not a JID. */
export function bareOf(text: string): string | null {
  return parseJid(text)?.bare ?? null;
}
