// The stanza types RFC 6120 and RFC 6121 define, checked where a stanza
// enters the farm (a client's c2s, the router for an XEP-0114 component), so
// that a malformed one is answered bad-request by the first process that
// reads it, and never travels further.
import type { Element } from "ltx";

// RFC 6120 §8.2.3: an iq is one of these, and it carries an id.
const IQ_TYPES: ReadonlySet<string> = new Set(["get", "set", "result", "error"]);
// RFC 6121 §4.7.1: no type (available) or one of these.
const PRESENCE_TYPES: ReadonlySet<string> = new Set(["error", "probe", "subscribe", "subscribed", "unavailable", "unsubscribe", "unsubscribed"]);

/**
 * Why a stanza must be answered `bad-request` (RFC 6120 §8.1.3, §8.2.3;
 * RFC 6121 §4.7.1), or undefined when it may go on. A message of an unknown
 * type goes on: RFC 6121 §5.2.2 says to take it as "normal" (the sm does),
 * and so does ejabberd. An error stanza always goes on, since an error is
 * never answered with another.
 */
export function badRequestText(stanza: Element): string | undefined {
  const type: string | undefined = stanza.attrs.type;
  if (type === "error") return undefined;
  if (stanza.name === "iq") {
    if (type === undefined || !IQ_TYPES.has(type)) return "an iq's type must be get, set, result or error";
    if (stanza.attrs.id === undefined) return "an iq must have an id";
  } else if (stanza.name === "presence" && type !== undefined && !PRESENCE_TYPES.has(type)) {
    return "not a presence type of RFC 6121";
  }
  return undefined;
}

/** Whether a stanza whose session is gone is routed again (by its c2s, or by its sm after a resumption window, protocol §2.6): anything but presence, which is state, not replayed. */
export function routedAgain(xml: string | Buffer): boolean {
  return !(typeof xml === "string" ? xml : xml.toString("utf8", 0, 9)).startsWith("<presence");
}
