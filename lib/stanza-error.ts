// The one builder of stanza errors (RFC 6120 §8.3), for every process that
// answers a stanza with one. The sm, which builds and passes on ltx
// elements, takes an element; the c2s and the router, which write strings,
// take the same reply as XML written without a tree (a tree and a serialize
// cost a c2s reply two to three times the template string it had before).
import { Element } from "ltx";
import { attribute, escapeText, serialize } from "./xml-serialize.js";

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

export function isCondition(name: string): name is Condition {
  return Object.hasOwn(ERROR_TYPES, name);
}

export interface ErrorOptions {
  /** Descriptive text for the sender (§8.3.2). */
  text?: string | undefined;
  /** An application-specific condition (§8.3.2), e.g. XEP-0060's pubsub#errors. */
  app?: Element | undefined;
  /**
   * The reply leaves out 'from' (§8.3.1 rule 2: no swap that would put a
   * malformed or unchecked JID there) and names who generated the error in
   * the error's 'by' (§8.3.1 rule 5) instead: the c2s answering for the server.
   */
  by?: string | undefined;
}

/** An error stanza, which is never answered with another (RFC 6120 §8.3.1). */
export function isError(el: Answered): boolean {
  return el.attrs.type === "error";
}

/** What the builder reads of the stanza it answers: its name and addresses. */
export type Answered = Pick<Element, "name" | "attrs">;

/**
 * A reply's envelope (RFC 6120 §8.2.3, §8.3.1): the stanza's name, 'to' and
 * 'from' swapped ('from' left out if `fromRecipient` is false), 'id' kept.
 */
export function replyTo(stanza: Answered, type: string, fromRecipient = true): Element {
  const attrs: Record<string, string> = {};
  envelope(stanza, type, fromRecipient, (name, value) => (attrs[name] = value));
  return new Element(stanza.name, attrs);
}

/** The reply's attributes in their order, handed to `put`: the rules both renderings share. */
function envelope(stanza: Answered, type: string, fromRecipient: boolean, put: (name: string, value: string) => void): void {
  const { from, to, id } = stanza.attrs as Record<string, string | undefined>;
  put("type", type);
  if (from) put("to", from);
  if (to && fromRecipient) put("from", to);
  if (id !== undefined) put("id", id);
}

/** The error reply to a stanza (RFC 6120 §8.3), as an element: for the sm. */
export function errorReply(stanza: Answered, condition: Condition, options: ErrorOptions = {}): Element {
  const { text, app, by } = options;
  const reply = replyTo(stanza, "error", by === undefined);
  const error = reply.c("error", by === undefined ? { type: ERROR_TYPES[condition] } : { type: ERROR_TYPES[condition], by });
  error.c(condition, { xmlns: NS_STANZAS });
  if (text) error.c("text", { xmlns: NS_STANZAS }).t(text);
  if (app) error.cnode(app);
  return reply;
}

/**
 * The same reply written straight as XML, byte for byte what
 * serialize(errorReply(…)) gives: for the c2s and the router, which write
 * strings, without the element tree they would only serialise again.
 */
export function errorReplyXml(stanza: Answered, condition: Condition, options: ErrorOptions = {}): string {
  const { text, app, by } = options;
  let out = `<${stanza.name}`;
  envelope(stanza, "error", by === undefined, (name, value) => (out += attribute(name, value)));
  out += `><error type='${ERROR_TYPES[condition]}'${by === undefined ? "" : attribute("by", by)}><${condition} xmlns='${NS_STANZAS}'/>`;
  if (text) out += `<text xmlns='${NS_STANZAS}'>${escapeText(text)}</text>`;
  if (app) out += serialize(app);
  return `${out}</error></${stanza.name}>`;
}

/** The defined condition of an error stanza (RFC 6120 §8.3.3), if it names one. */
export function conditionOf(el: Element): string | undefined {
  return el
    .getChild("error")
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === NS_STANZAS && c.name !== "text")?.name;
}
