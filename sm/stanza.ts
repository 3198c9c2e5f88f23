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
  // A quota of this server's; modify: the sender must make room first.
  "policy-violation": "modify",
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

/**
 * The error reply to a stanza (RFC 6120 §8.3), with an application-specific
 * condition if given (§8.3.2, e.g. XEP-0060's pubsub#errors); callers never
 * answer an error with an error.
 */
export function errorReply(el: Element, condition: Condition, text?: string, appCondition?: Element): Element {
  const reply = replyTo(el, "error");
  const error = reply.c("error", { type: ERROR_TYPES[condition] });
  error.c(condition, { xmlns: NS_STANZAS });
  if (text) error.c("text", { xmlns: NS_STANZAS }).t(text);
  if (appCondition) error.cnode(appCondition);
  return reply;
}

/** The defined condition of an error stanza (RFC 6120 §8.3.3), if it names one. */
export function conditionOf(el: Element): string | undefined {
  return el
    .getChild("error")
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text")?.name;
}

/** How an iq request (ModuleApi.request) failed: an error answer, or none in time. */
export class IqRequestError extends Error {
  constructor(
    /** The error answer's condition, or "timeout" / "shutdown" when there was no answer. */
    readonly condition: string,
    /** The error answer, when there was one. */
    readonly answer: Element | null = null,
  ) {
    super(answer ? `iq error: ${condition}` : `iq request failed: ${condition}`);
    this.name = "IqRequestError";
  }
}

/**
 * A stanza the link would not carry (over link.max_frame): it was not sent.
 * Thrown by ModuleApi.send, deliver and reply; uncaught, the sm answers the
 * stanza being processed with resource-constraint.
 */
export class FrameTooLargeError extends Error {
  constructor(readonly bytes: number) {
    super(`stanza of ${bytes} bytes does not fit a link frame`);
    this.name = "FrameTooLargeError";
  }
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

/**
 * A copy of an element taken out of its stanza, to store or to put in
 * another: the namespaces it inherited (default and prefixed) declared on it.
 */
export function standalone(el: Element): Element {
  const copy = clone(el);
  const ns = el.findNS();
  if (ns !== undefined && copy.attrs.xmlns === undefined) copy.attrs.xmlns = ns;
  for (let up = el.parent; up; up = up.parent) {
    for (const [name, value] of Object.entries(up.attrs)) {
      if (name.startsWith("xmlns:") && !(name in copy.attrs)) copy.attrs[name] = value;
    }
  }
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
