// Building the stanzas the sm answers with. Received stanzas are never
// mutated: whatever the sm sends is either the received bytes or a new
// element (save an inbound message changed through mod-message.ts's
// changeMessage, which is then sent as its element).
import { type Element, clone } from "ltx";
import { replyTo } from "../lib/stanza-error.js";

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
