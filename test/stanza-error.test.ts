// The one stanza-error builder (lib/stanza-error.ts) against RFC 6120 §8.3,
// in the cases each of its callers builds: the sm answering a user's stanza
// (with text, with XEP-0060's application condition), the router bouncing a
// component's stanza, and the c2s answering for the server (no 'from', 'by').
import { parse } from "ltx";
import { describe, expect, it } from "vitest";
import { NS_STANZAS, conditionOf, errorReply, errorReplyXml, isCondition, isError, replyTo, type Answered, type Condition, type ErrorOptions } from "../lib/stanza-error.js";
import { serialize } from "../lib/xml-serialize.js";

const NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors";

/** The reply as XML, checked to be the same whether written straight (c2s, router) or as an element (sm). */
function xml(stanza: Answered, condition: Condition, options?: ErrorOptions): string {
  const written = errorReplyXml(stanza, condition, options);
  expect(written).toBe(serialize(errorReply(stanza, condition, options)));
  return written;
}

describe("errorReply", () => {
  it("swaps to and from, keeps the id and the stanza's name, and types the condition (sm: service-unavailable)", () => {
    const iq = parse("<iq type='get' id='q1' from='alice@localhost/a' to='bob@localhost'><query xmlns='jabber:iq:version'/></iq>");
    expect(xml(iq, "service-unavailable")).toBe(
      `<iq type='error' to='alice@localhost/a' from='bob@localhost' id='q1'><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></iq>`,
    );
  });

  it("leaves the payload out: §8.3.1 lets the original XML be included, and no caller does", () => {
    const msg = parse("<message id='m1' from='alice@localhost/a' to='bob@localhost'><body>hi</body></message>");
    const reply = errorReply(msg, "resource-constraint", { text: "queue full" });
    expect(reply.getChild("body")).toBeUndefined();
    expect(reply.name).toBe("message");
    expect(reply.getChild("error")!.attrs.type).toBe("wait");
  });

  it("adds the text after the condition, escaped (sm: a quota, the router: bad-request)", () => {
    const presence = parse("<presence type='bogus' id='p1' from='bot.localhost' to='u1@localhost'/>");
    expect(xml(presence, "bad-request", { text: "not a <presence> type & more" })).toBe(
      `<presence type='error' to='bot.localhost' from='u1@localhost' id='p1'><error type='modify'><bad-request xmlns='${NS_STANZAS}'/>` +
        `<text xmlns='${NS_STANZAS}'>not a &lt;presence> type &amp; more</text></error></presence>`,
    );
  });

  it("adds an application-specific condition after the text (mod-pep's pubsub#errors)", () => {
    const iq = parse("<iq type='set' id='p2' from='alice@localhost/a'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>");
    const app = parse(`<invalid-jid xmlns='${NS_PUBSUB_ERRORS}'/>`);
    expect(xml(iq, "bad-request", { text: "why", app })).toContain(`<text xmlns='${NS_STANZAS}'>why</text><invalid-jid xmlns='${NS_PUBSUB_ERRORS}'/></error>`);
    const error = errorReply(iq, "bad-request", { text: "why", app }).getChild("error")!;
    expect(error.children.map((c) => (typeof c === "string" ? c : c.name))).toEqual(["bad-request", "text", "invalid-jid"]);
    expect(error.getChild("invalid-jid", NS_PUBSUB_ERRORS)).toBeTruthy();
  });

  it("escapes the addresses it copies", () => {
    expect(xml(parse(`<iq type='get' id="a'b" from='x&amp;y@localhost' to='z@localhost'/>`), "bad-request")).toBe(
      `<iq type='error' to='x&amp;y@localhost' from='z@localhost' id="a'b"><error type='modify'><bad-request xmlns='${NS_STANZAS}'/></error></iq>`,
    );
  });

  it("keeps an empty id, and adds none the stanza did not have", () => {
    expect(errorReply(parse("<iq type='get' id='' to='localhost'/>"), "bad-request").attrs.id).toBe("");
    expect("id" in errorReply(parse("<message to='bob@localhost'/>"), "bad-request").attrs).toBe(false);
  });

  it("answers a stanza without addresses with none (the router's bounce of an unaddressed stanza)", () => {
    expect(xml(parse("<message id='x'/>"), "jid-malformed")).toBe(
      `<message type='error' id='x'><error type='modify'><jid-malformed xmlns='${NS_STANZAS}'/></error></message>`,
    );
  });

  it("with `by`: no 'from', the server named in the error (c2s: jid-malformed to a malformed 'to')", () => {
    const msg = parse("<message id='m1' from='alice@localhost/a' to='@@bad'><body>x</body></message>");
    expect(xml(msg, "jid-malformed", { by: "localhost" })).toBe(
      `<message type='error' to='alice@localhost/a' id='m1'><error type='modify' by='localhost'><jid-malformed xmlns='${NS_STANZAS}'/></error></message>`,
    );
  });

  it("answers a pre-bind iq by its id alone (c2s: bind refused, bind while binding)", () => {
    expect(xml({ name: "iq", attrs: { id: "b1" } }, "conflict", { by: "localhost" })).toBe(
      `<iq type='error' id='b1'><error type='cancel' by='localhost'><conflict xmlns='${NS_STANZAS}'/></error></iq>`,
    );
    expect(xml({ name: "iq", attrs: { id: undefined } }, "resource-constraint", { by: "localhost" })).toBe(
      `<iq type='error'><error type='wait' by='localhost'><resource-constraint xmlns='${NS_STANZAS}'/></error></iq>`,
    );
  });

  it("gives each condition its RFC 6120 §8.3.3 type", () => {
    const types = (conditions: Parameters<typeof errorReply>[1][]) =>
      conditions.map((c) => errorReply(parse("<iq type='get' id='1'/>"), c).getChild("error")!.attrs.type);
    expect(types(["forbidden", "not-authorized"])).toEqual(["auth", "auth"]);
    expect(types(["bad-request", "jid-malformed", "not-acceptable", "policy-violation"])).toEqual(["modify", "modify", "modify", "modify"]);
    expect(types(["conflict", "feature-not-implemented", "item-not-found", "not-allowed", "remote-server-not-found", "service-unavailable"])).toEqual(
      Array(6).fill("cancel"),
    );
    expect(types(["internal-server-error", "recipient-unavailable", "resource-constraint"])).toEqual(["wait", "wait", "wait"]);
  });
});

describe("the rest of the module", () => {
  it("replyTo builds a result's envelope the same way (sm's iqResult)", () => {
    expect(serialize(replyTo(parse("<iq type='get' id='v' from='a@localhost/r' to='localhost'/>"), "result"))).toBe(
      "<iq type='result' to='a@localhost/r' from='localhost' id='v'/>",
    );
  });

  it("conditionOf reads back the defined condition, past the text and an application condition", () => {
    const reply = errorReply(parse("<iq type='get' id='1'/>"), "item-not-found", { text: "t", app: parse("<x xmlns='urn:example'/>") });
    expect(conditionOf(parse(serialize(reply)))).toBe("item-not-found");
    expect(conditionOf(parse("<iq type='result' id='1'/>"))).toBeUndefined();
  });

  it("isError and isCondition", () => {
    expect(isError(parse("<message type='error'/>"))).toBe(true);
    expect(isError(parse("<message type='chat'/>"))).toBe(false);
    expect(isCondition("conflict")).toBe(true);
    expect(isCondition("toString")).toBe(false);
    expect(isCondition("no-such-condition")).toBe(false);
  });
});
