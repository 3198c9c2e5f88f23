// vcard-temp (XEP-0054) and private XML storage (XEP-0049), through an
// in-process sm over a real SQLite store.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_VCARD_BYTES } from "../sm/mod-vcard.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const VCARD = "vcard-temp";
const PRIVATE = "jabber:iq:private";
const ALICE = `alice@${DOMAIN}`;

/** Sends an iq and returns its one answer. */
async function ask(client: Client, xml: string): Promise<Element> {
  const answers = (await client.request(xml)).filter((s) => s.name === "iq");
  expect(answers).toHaveLength(1);
  return answers[0]!;
}

describe("sm vcard-temp", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  const aliceCard =
    `<vCard xmlns='${VCARD}'><FN>Alice Liddell</FN><NICKNAME>al</NICKNAME>` +
    `<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>`;

  it("answers an empty vCard when none is stored, to the user and to anyone else", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const own = await ask(alice, `<iq type='get' id='v1'><vCard xmlns='${VCARD}'/></iq>`);
    expect(own.attrs).toMatchObject({ type: "result", id: "v1", to: alice.jid });
    expect(own.getChild("vCard", VCARD)!.children).toEqual([]);
    const other = await ask(bob, `<iq type='get' id='v2' to='${ALICE}'><vCard xmlns='${VCARD}'/></iq>`);
    expect(other.attrs).toMatchObject({ type: "result", id: "v2", from: ALICE, to: bob.jid });
    expect(other.getChild("vCard", VCARD)!.children).toEqual([]);
  });

  it("stores the user's vCard before answering, and gives it to the user and to others", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const set = await ask(alice, `<iq type='set' id='s1'>${aliceCard}</iq>`);
    expect(set.attrs).toMatchObject({ type: "result", id: "s1", to: alice.jid });
    expect(set.children).toEqual([]);
    expect(await h.store.getVcard(ALICE)).toContain("Alice Liddell");

    for (const [client, to] of [[alice, ""], [alice, ` to='${ALICE}'`], [bob, ` to='${ALICE}'`]] as const) {
      const got = await ask(client, `<iq type='get' id='g'${to}><vCard xmlns='${VCARD}'/></iq>`);
      expect(got.attrs.type).toBe("result");
      const vcard = got.getChild("vCard", VCARD)!;
      expect(vcard.getChildText("FN")).toBe("Alice Liddell");
      expect(vcard.getChild("PHOTO")!.getChildText("BINVAL")).toBe("iVBORw0KGgo=");
    }

    // Replaced whole; an empty one reads back empty.
    await ask(alice, `<iq type='set' id='s2' to='${ALICE}'><vCard xmlns='${VCARD}'><FN>A.</FN></vCard></iq>`);
    const replaced = await ask(bob, `<iq type='get' id='g2' to='${ALICE}'><vCard xmlns='${VCARD}'/></iq>`);
    expect(replaced.getChild("vCard", VCARD)!.getChildText("FN")).toBe("A.");
    expect(replaced.getChild("vCard", VCARD)!.getChild("NICKNAME")).toBeUndefined();
    await ask(alice, `<iq type='set' id='s3'><vCard xmlns='${VCARD}'/></iq>`);
    const cleared = await ask(bob, `<iq type='get' id='g3' to='${ALICE}'><vCard xmlns='${VCARD}'/></iq>`);
    expect(cleared.getChild("vCard", VCARD)!.children).toEqual([]);
  });

  it("refuses a set from anyone else, and a vCard over the limit", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await ask(alice, `<iq type='set' id='s1'>${aliceCard}</iq>`);
    const forged = await ask(bob, `<iq type='set' id='f' to='${ALICE}'><vCard xmlns='${VCARD}'><FN>Mallory</FN></vCard></iq>`);
    expect(forged.attrs).toMatchObject({ type: "error", id: "f", from: ALICE, to: bob.jid });
    expect(conditionOf(forged)).toBe("forbidden");
    expect(await h.store.getVcard(ALICE)).toContain("Alice Liddell");

    const photo = "A".repeat(MAX_VCARD_BYTES);
    const big = await ask(alice, `<iq type='set' id='big'><vCard xmlns='${VCARD}'><PHOTO><BINVAL>${photo}</BINVAL></PHOTO></vCard></iq>`);
    expect(big.attrs).toMatchObject({ type: "error", id: "big" });
    expect(conditionOf(big)).toBe("not-acceptable");
    expect(await h.store.getVcard(ALICE)).toContain("Alice Liddell");
  });

  it("answers service-unavailable for an account that does not exist, and advertises vcard-temp", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    for (const type of ["get", "set"]) {
      const answer = await ask(alice, `<iq type='${type}' id='n' to='nobody@${DOMAIN}'><vCard xmlns='${VCARD}'/></iq>`);
      expect(answer.attrs.type).toBe("error");
      expect(conditionOf(answer)).toBe("service-unavailable");
    }
    const info = await ask(alice, `<iq type='get' id='d' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toContain(VCARD);
  });
});

describe("sm private XML storage", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  const query = (inner: string) => `<query xmlns='${PRIVATE}'>${inner}</query>`;

  it("stores elements by name for the user, and answers them or the empty element asked for", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    const set = await ask(
      alice,
      `<iq type='set' id='p1'>${query(
        "<storage xmlns='storage:bookmarks'><conference jid='tea@muc.example.com' autojoin='true'/></storage>" +
          "<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>",
      )}</iq>`,
    );
    expect(set.attrs).toMatchObject({ type: "result", id: "p1", to: alice.jid });
    expect(await h.store.listPrivate(ALICE)).toHaveLength(2);

    const bookmarks = await ask(alice, `<iq type='get' id='p2'>${query("<storage xmlns='storage:bookmarks'/>")}</iq>`);
    expect(bookmarks.attrs).toMatchObject({ type: "result", id: "p2" });
    const storage = bookmarks.getChild("query", PRIVATE)!.getChild("storage", "storage:bookmarks")!;
    expect(storage.getChild("conference")!.attrs).toMatchObject({ jid: "tea@muc.example.com", autojoin: "true" });

    const prefs = await ask(alice, `<iq type='get' id='p3' to='${ALICE}'>${query("<prefs xmlns='urn:example:prefs'/>")}</iq>`);
    expect(prefs.getChild("query", PRIVATE)!.getChild("prefs", "urn:example:prefs")!.getChildText("theme")).toBe("dark");

    // Same namespace, another name: nothing stored under it.
    const other = await ask(alice, `<iq type='get' id='p4'>${query("<other xmlns='urn:example:prefs'/>")}</iq>`);
    const empty = other.getChild("query", PRIVATE)!.getChildElements();
    expect(empty).toHaveLength(1);
    expect(empty[0]!.name).toBe("other");
    expect(empty[0]!.attrs.xmlns).toBe("urn:example:prefs");
    expect(empty[0]!.children).toEqual([]);
  });

  it("refuses jabber:* namespaces and malformed queries", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    for (const [type, inner] of [
      ["set", "<query xmlns='jabber:iq:roster'/>"],
      ["get", "<query xmlns='jabber:iq:roster'/>"],
      // No namespace of its own: it is in jabber:iq:private.
      ["set", "<prefs><x/></prefs>"],
      // One bad element refuses the whole set.
      ["set", "<prefs xmlns='urn:example:prefs'/><vCard xmlns='jabber:x:vcard'/>"],
    ]) {
      const answer = await ask(alice, `<iq type='${type}' id='j'>${query(inner!)}</iq>`);
      expect(answer.attrs.type).toBe("error");
      expect(conditionOf(answer)).toBe("not-acceptable");
    }
    expect(await h.store.listPrivate(ALICE)).toEqual([]);

    const two = await ask(alice, `<iq type='get' id='t'>${query("<a xmlns='urn:a'/><b xmlns='urn:b'/>")}</iq>`);
    expect(conditionOf(two)).toBe("bad-request");
    const none = await ask(alice, `<iq type='set' id='n'>${query("")}</iq>`);
    expect(conditionOf(none)).toBe("bad-request");
  });

  it("is forbidden to anyone but the user", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await ask(alice, `<iq type='set' id='p'>${query("<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>")}</iq>`);
    for (const type of ["get", "set"]) {
      const answer = await ask(bob, `<iq type='${type}' id='x' to='${ALICE}'>${query("<prefs xmlns='urn:example:prefs'/>")}</iq>`);
      expect(answer.attrs).toMatchObject({ type: "error", id: "x", from: ALICE, to: bob.jid });
      expect(conditionOf(answer)).toBe("forbidden");
      expect(answer.getChild("query")).toBeUndefined();
    }
    const kept = await ask(alice, `<iq type='get' id='k'>${query("<prefs xmlns='urn:example:prefs'/>")}</iq>`);
    expect(kept.getChild("query", PRIVATE)!.getChild("prefs")!.getChildText("theme")).toBe("dark");
  });
});
