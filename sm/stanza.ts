// Building the stanzas the sm answers with. Received stanzas are never
// mutated: whatever the sm sends is either the received bytes or a new element.
import { Element, clone } from "ltx";

export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

// RFC 6120 §8.3.3: the error type each condition carries.
const ERROR_TYPES = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  "internal-server-error": "wait",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "recipient-unavailable": "wait",
  "remote-server-not-found": "cancel",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
} as const;

export type Condition = keyof typeof ERROR_TYPES;

export function isError(el: Element): boolean {
  return el.attrs.type === "error";
}

/** Swaps from and to and keeps the id, as every reply does (RFC 6120 §8.2.3, §8.3.1). */
function replyTo(el: Element, type: string): Element {
  const attrs: Record<string, string> = { type };
  if (el.attrs.from) attrs.to = el.attrs.from;
  if (el.attrs.to) attrs.from = el.attrs.to;
  if (el.attrs.id) attrs.id = el.attrs.id;
  return new Element(el.name, attrs);
}

/** The error reply to a stanza (RFC 6120 §8.3); callers never answer an error with an error. */
export function errorReply(el: Element, condition: Condition, text?: string): Element {
  const reply = replyTo(el, "error");
  const error = reply.c("error", { type: ERROR_TYPES[condition] });
  error.c(condition, { xmlns: NS_STANZAS });
  if (text) error.c("text", { xmlns: NS_STANZAS }).t(text);
  return reply;
}

/** An iq result for a get or set, with an optional payload. */
export function iqResult(iq: Element, payload?: Element): Element {
  const reply = replyTo(iq, "result");
  if (payload) reply.cnode(payload);
  return reply;
}

/** A copy of a stanza with some addresses replaced (undefined removes one). */
export function readdress(el: Element, addresses: { from?: string | undefined; to?: string | undefined }): Element {
  const copy = clone(el);
  if ("from" in addresses) copy.attrs.from = addresses.from;
  if ("to" in addresses) copy.attrs.to = addresses.to;
  return copy;
}

/** The namespace and local name of an iq's payload, the tail of its event name. */
export function payloadKey(child: Element): string {
  return `${child.getNS() ?? "jabber:client"}:${child.getName()}`;
}

/** RFC 6121 §4.7.2.3: an integer from -128 to 127, 0 when absent. */
export function priorityOf(stanza: Element): number {
  const text = stanza.getChildText("priority")?.trim();
  if (!text || !/^[+-]?\d+$/.test(text)) return 0;
  return Math.max(-128, Math.min(127, Number(text)));
}
