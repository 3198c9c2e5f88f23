// XEP-0077 for a logged-in account in the sm: the registration read, the
// password changed (the other sessions end, this one stays) and the account
// removed as `xfarm user del` removes it.
import { parse, type Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp } from "../lib/link/session-payload.js";
import { verifyPassword } from "../lib/sasl/scram-credentials.js";
import { enabledModules } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const NS = "jabber:iq:register";
const ALICE = `alice@${DOMAIN}`;
const change = (id: string, fields: string, to = "") => `<iq type='set' id='${id}'${to && ` to='${to}'`}><query xmlns='${NS}'>${fields}</query></iq>`;

describe("sm XEP-0077 for a logged-in account", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function passwordIs(user: string, password: string): Promise<boolean> {
    const keys = (await h.store.getCredentials(user))?.["SHA-256"];
    return !!keys && (await verifyPassword(password, keys, "SHA-256"));
  }

  /** alice online on two resources, bob, her mutual contact, on one; what they received so far taken. */
  async function aliceTwiceAndBob(): Promise<{ a1: Client; a2: Client; bob: Client }> {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await bob.online();
    const a1 = await h.connect(`${ALICE}/a1`);
    const a2 = await h.connect(`${ALICE}/a2`);
    await a1.online();
    await a2.online();
    for (const c of [a1, a2, bob]) c.frames();
    return { a1, a2, bob };
  }

  /** The stanzas a session was delivered and whether (and how) it was closed, in the order sent. */
  function seen(c: Client): { stanzas: Element[]; close: { condition: string; text?: string } | undefined } {
    const frames = c.frames();
    const close = frames.find((f) => f.op === SessionOp.Close);
    const stanzas = frames.filter((f) => f.op === SessionOp.Deliver).map((f) => parse(f.xml.toString("utf8")));
    if (close) expect(frames.at(-1), "nothing after the close").toBe(close);
    return { stanzas, close: close?.meta as { condition: string; text?: string } | undefined };
  }

  it("advertises jabber:iq:register and answers the registration, to the account or to the domain", async () => {
    h = await Harness.create(["alice"]);
    const a = await h.connect(`${ALICE}/a`);
    const [info] = await a.request(`<iq type='get' id='d' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
    for (const to of ["", DOMAIN, ALICE]) {
      const [answer, ...rest] = await a.request(`<iq type='get' id='g'${to && ` to='${to}'`}><query xmlns='${NS}'/></iq>`);
      expect(answer!.attrs).toMatchObject({ type: "result", id: "g" });
      const query = answer!.getChild("query", NS)!;
      expect(query.getChild("registered")).toBeDefined();
      expect(query.getChildText("username")).toBe("alice");
      expect(rest).toEqual([]);
    }
  });

  it("changes the password: new keys stored, the other sessions closed with reset, this one kept", async () => {
    const { a1, a2, bob } = await aliceTwiceAndBob();

    await a1.send(change("c", "<username>Alice</username><password>new pässword</password>", DOMAIN));
    // The result, then a2 logged out, as bob sees it too; a1 stays and is still served.
    const own = seen(a1);
    expect(own.stanzas.map((s) => [s.name, s.attrs.type, s.attrs.id ?? s.attrs.from])).toEqual([
      ["iq", "result", "c"],
      ["presence", "unavailable", `${ALICE}/a2`],
    ]);
    expect(own.close).toBeUndefined();
    expect(await passwordIs(ALICE, "new pässword")).toBe(true);
    expect(seen(a2).close).toEqual({ sid: a2.sid, condition: "reset", text: "password changed" });
    expect(seen(bob).stanzas.map((s) => [s.attrs.type, s.attrs.from])).toEqual([["unavailable", `${ALICE}/a2`]]);
    const [pong] = await a1.request(`<iq type='get' id='p' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    expect(pong!.attrs).toMatchObject({ type: "result", id: "p" });
  });

  it("refuses another account's username, a missing field, and a password that is empty or fails SASLprep; nothing changes", async () => {
    h = await Harness.create(["alice", "bob"]);
    const before = await h.store.getCredentials(ALICE);
    const a1 = await h.connect(`${ALICE}/a1`);
    const a2 = await h.connect(`${ALICE}/a2`);
    for (const [fields, condition] of [
      ["<username>bob</username><password>x</password>", "bad-request"],
      ["<username>alice@example.com</username><password>x</password>", "bad-request"],
      ["<password>x</password>", "bad-request"],
      ["<username>alice</username>", "bad-request"],
      ["<username>alice</username><password/>", "not-acceptable"],
      ["<username>alice</username><password>bad\u0007pw</password>", "not-acceptable"],
      ["<remove/><username>alice</username>", "bad-request"],
    ] as const) {
      const [answer] = await a1.request(change("x", fields));
      expect(answer!.attrs, fields).toMatchObject({ type: "error", id: "x" });
      expect(conditionOf(answer!), fields).toBe(condition);
    }
    expect(await h.store.getCredentials(ALICE)).toEqual(before);
    expect(seen(a2).close).toBeUndefined();
  });

  it("serves only the account itself: another account and a domain with a resource are not it", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await h.connect(`${ALICE}/a`);
    for (const to of [`bob@${DOMAIN}`, `${DOMAIN}/x`]) {
      const [answer] = await a.request(change("o", "<username>bob</username><password>x</password>", to));
      expect(answer!.attrs, to).toMatchObject({ type: "error", id: "o" });
      expect(conditionOf(answer!), to).toBe("service-unavailable");
    }
  });

  it("removes the account: the result first, then every session closed, contacts told, the account gone", async () => {
    const { a1, a2, bob } = await aliceTwiceAndBob();

    await a1.send(change("r", "<remove/>"));
    const own = seen(a1);
    expect(own.stanzas.map((s) => s.attrs)).toMatchObject([{ type: "result", id: "r" }]);
    expect(own.close).toMatchObject({ condition: "not-authorized" });
    expect(seen(a2).close).toMatchObject({ condition: "not-authorized" });
    const toBob = seen(bob).stanzas.map((s) => (s.is("presence") ? `${s.attrs.type} ${s.attrs.from}` : s.attrs.type));
    expect(toBob.slice(0, 2).sort()).toEqual([`unavailable ${ALICE}/a1`, `unavailable ${ALICE}/a2`]);
    expect(toBob).toEqual(expect.arrayContaining([`unsubscribe ${ALICE}`, `unsubscribed ${ALICE}`]));
    expect(await h.store.accountExists(ALICE)).toBe(false);
    expect((await h.startFrame(`${ALICE}/again`)).meta).toMatchObject({ condition: "not-authorized" });
  });

  it("with [sm.modules.register] allow_remove = false, refuses removal not-allowed and keeps the account and its sessions", async () => {
    const modules = enabledModules(MODULES, { table: { register: { allow_remove: false } }, env: {} });
    h = await Harness.create(["alice"], { modules });
    const a = await h.connect(`${ALICE}/a`);
    const [answer, ...rest] = await a.request(change("r", "<remove/>"));
    expect(answer!.attrs).toMatchObject({ type: "error", id: "r" });
    expect(conditionOf(answer!)).toBe("not-allowed");
    expect(rest).toEqual([]);
    expect(await h.store.accountExists(ALICE)).toBe(true);
    // A password change is still the user's.
    const [changed] = await a.request(change("c", "<username>alice</username><password>still mine</password>"));
    expect(changed!.attrs).toMatchObject({ type: "result", id: "c" });
  });
});
