// XEP-0313 message archive management in the sm: what is archived, in and
// out, preferences, the XEP-0359 stanza-id, and queries with their paging,
// filters and errors.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { MAM_OPTIONS } from "../sm/mod-mam.js";
import { enabledModules } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const NS = "urn:xmpp:mam:2";
const NS_SID = "urn:xmpp:sid:0";
const alice = `alice@${DOMAIN}`;
const bob = `bob@${DOMAIN}`;
const chat = (to: string, id: string, extra = "") => `<message to='${to}' type='chat' id='${id}'><body>${id}</body>${extra}</message>`;

interface Answer {
  /** The archived messages' ids (their `id` attributes), in the order the results came. */
  ids: string[];
  results: Element[];
  fin: Element | undefined;
  iq: Element;
}

/** Queries the archive; `form` are the data form's fields, `set` the RSM element's inside. */
async function query(c: Client, opts: { form?: Record<string, string>; set?: string; flip?: boolean; queryid?: string } = {}): Promise<Answer> {
  const fields = Object.entries(opts.form ?? {})
    .map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`)
    .join("");
  const form = opts.form ? `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${NS}</value></field>${fields}</x>` : "";
  const set = opts.set === undefined ? "" : `<set xmlns='http://jabber.org/protocol/rsm'>${opts.set}</set>`;
  const qid = opts.queryid ? ` queryid='${opts.queryid}'` : "";
  const stanzas = await c.request(`<iq type='set' id='q'><query xmlns='${NS}'${qid}>${form}${set}${opts.flip ? "<flip-page/>" : ""}</query></iq>`);
  const iq = stanzas.at(-1)!;
  const results = stanzas.slice(0, -1);
  const ids = results.map((m) => m.getChild("result", NS)!.getChild("forwarded")!.getChild("message")!.attrs.id as string);
  return { ids, results, fin: iq.getChild("fin", NS), iq };
}

function setOf(fin: Element | undefined): { first?: string; last?: string; count?: string } {
  const set = fin?.getChild("set");
  return { first: set?.getChildText("first") ?? undefined, last: set?.getChildText("last") ?? undefined, count: set?.getChildText("count") ?? undefined };
}

describe("sm message archive management", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function online(jid: string): Promise<Client> {
    const c = await h.connect(jid);
    await c.online();
    return c;
  }

  it("advertises MAM and stanza-id on the account, MAM on the server, and returns the query form", async () => {
    h = await Harness.create(["alice"]);
    const a = await online(`${alice}/a`);
    const [info] = await a.request(`<iq type='get' id='d' to='${alice}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const features = info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([NS, NS_SID]));
    // And on the server's, where Profanity looks.
    const [server] = await a.request(`<iq type='get' id='s' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(server!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
    const [form] = await a.request(`<iq type='get' id='f'><query xmlns='${NS}'/></iq>`);
    const vars = form!.getChild("query", NS)!.getChild("x", "jabber:x:data")!.getChildren("field").map((f) => f.attrs.var);
    expect(vars).toEqual(["FORM_TYPE", "with", "start", "end", "before-id", "after-id"]);
  });

  it("takes its options from [sm.modules.mam], stops the sm on one it cannot work with, and when disabled neither archives nor advertises", async () => {
    const withMam = (mam: Record<string, unknown>) => enabledModules(MODULES, { table: { mam }, env: {} });
    h = await Harness.create(["alice", "bob"], { modules: withMam({ default_page: 2, max_page: 3, default_policy: "never" }) });
    const a = await online(`${alice}/a`);
    const [prefs] = await a.request(`<iq type='get' id='p'><prefs xmlns='${NS}'/></iq>`);
    expect(prefs!.getChild("prefs", NS)!.attrs.default).toBe("never");
    await h.store.appendArchive(alice, "mam", Array.from({ length: 5 }, (_, i) => ({ stamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), with: bob, xml: chat(bob, `m${i}`) })));
    expect((await query(a)).ids).toHaveLength(2);
    expect((await query(a, { set: "<max>10</max>" })).ids).toHaveLength(3);
    await h.close();

    await expect(Harness.create([], { modules: withMam({ default_policy: "sometimes" }) })).rejects.toThrow(
      'config sm.modules.mam.default_policy: expected "always", "never", "roster", got "sometimes"',
    );
    await expect(Harness.create([], { modules: withMam({ default_page: 60 }) })).rejects.toThrow("config sm.modules.mam.default_page: expected 1 to max_page (50), got 60");

    h = await Harness.create(["alice", "bob"], { modules: withMam({ enabled: false }) });
    const off = await online(`${alice}/a`);
    const b = await online(`${bob}/b`);
    b.received();
    await off.send(chat(`${bob}/b`, "plain"));
    const [got] = b.received();
    expect(got!.getChildText("body")).toBe("plain");
    expect(got!.getChild("stanza-id", NS_SID)).toBeUndefined();
    const [info] = await off.request(`<iq type='get' id='d' to='${alice}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).not.toContain(NS);
    expect((await h.store.queryArchive(alice, "mam", { limit: 10 }))!.items).toEqual([]);
  });

  it("archives a message in the sender's and the recipient's archives, and gives the delivered one its stanza-id", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`${alice}/a`);
    const b = await online(`${bob}/b`);
    a.received();
    b.received();
    await a.send(chat(`${bob}/b`, "m1"));
    const [got] = b.received();
    const sid = got!.getChild("stanza-id", NS_SID)!;
    expect(sid.attrs.by).toBe(bob);

    const inBob = await query(b, { queryid: "x" });
    expect(inBob.ids).toEqual(["m1"]);
    const result = inBob.results[0]!.getChild("result", NS)!;
    expect(result.attrs).toMatchObject({ queryid: "x", id: sid.attrs.id });
    expect(inBob.results[0]!.attrs).toMatchObject({ from: bob, to: b.jid });
    const fwd = result.getChild("forwarded", "urn:xmpp:forward:0")!;
    expect(fwd.getChild("delay", "urn:xmpp:delay")!.attrs.stamp).toMatch(/^\d{4}-/);
    const archived = fwd.getChild("message")!;
    expect(archived.attrs).toMatchObject({ xmlns: "jabber:client", from: a.jid, to: `${bob}/b`, type: "chat" });
    expect(archived.getChild("stanza-id", NS_SID)).toBeUndefined();
    expect(inBob.fin!.attrs.complete).toBe("true");
    expect(setOf(inBob.fin)).toEqual({ first: sid.attrs.id, last: sid.attrs.id, count: "1" });

    const inAlice = await query(a);
    expect(inAlice.ids).toEqual(["m1"]);
    expect(inAlice.iq.attrs).toMatchObject({ type: "result", id: "q" });
    // Each archive is its owner's: alice's item has an id of its own.
    expect(inAlice.results[0]!.getChild("result", NS)!.attrs.id).not.toBe(sid.attrs.id);
  });

  it("archives a FORWARD that comes again after a failover once, under the same stanza-id", async () => {
    h = await Harness.create(["alice", "bob"]);
    const b = await online(`${bob}/b`);
    b.received();
    const forward = encodeSessionPayload(SessionOp.Forward, { origin: "c2s-9/abc/7.0" }, `<message from='${alice}/a' to='${bob}' type='chat' id='again'><body>x</body></message>`);
    await h.route("sm-2", bob, forward);
    await h.route("sm-2", bob, forward);
    const ids = b.received().map((m) => m.getChild("stanza-id", NS_SID)!.attrs.id);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe(ids[0]);
    expect((await query(b)).results.map((r) => r.getChild("result", NS)!.attrs.id)).toEqual([ids[0]]);
  });

  it("archives a message stored offline, which is delivered with its stanza-id", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`${alice}/a`);
    await a.send(chat(bob, "off"));
    const b = await h.connect(`${bob}/b`);
    const [, got] = await b.online(); // after its own presence, reflected
    const id = got!.getChild("stanza-id", NS_SID)!.attrs.id;
    expect((await query(b)).results.map((r) => r.getChild("result", NS)!.attrs.id)).toEqual([id]);
  });

  it("removes a stanza-id the sender forged in the recipient's name, and keeps others", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`${alice}/a`);
    const b = await online(`${bob}/b`);
    b.received();
    const forged = `<stanza-id xmlns='${NS_SID}' by='${bob}' id='forged'/><stanza-id xmlns='${NS_SID}' by='muc.example.org' id='other'/>`;
    await a.send(chat(`${bob}/b`, "f", forged));
    const ids = b.received()[0]!.getChildren("stanza-id", NS_SID).map((s) => [s.attrs.by, s.attrs.id]);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toEqual(["muc.example.org", "other"]);
    expect(ids[1]![0]).toBe(bob);
    expect(ids[1]![1]).not.toBe("forged");

    // Forged on a message that is not archived: still removed.
    await a.send(`<message to='${bob}/b' type='chat' id='ns'><body>x</body><no-store xmlns='urn:xmpp:hints'/>${forged}</message>`);
    expect(b.received()[0]!.getChildren("stanza-id", NS_SID).map((s) => s.attrs.by)).toEqual(["muc.example.org"]);
  });

  it("archives chat and normal messages with a body or a kept payload, by the hints, and nothing else", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`${alice}/a`);
    const b = await online(`${bob}/b`);
    const to = `${bob}/b`;
    await a.send(chat(to, "chat"));
    await a.send(`<message to='${to}' id='normal'><body>n</body></message>`);
    await a.send(`<message to='${to}' id='receipt'><received xmlns='urn:xmpp:receipts' id='chat'/></message>`);
    await a.send(`<message to='${to}' id='store'><store xmlns='urn:xmpp:hints'/><x xmlns='urn:example'/></message>`);
    await a.send(`<message to='${to}' type='chat' id='typing'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    await a.send(chat(to, "nostore", "<no-store xmlns='urn:xmpp:hints'/>"));
    await a.send(chat(to, "noperm", "<no-permanent-store xmlns='urn:xmpp:hints'/>"));
    await a.send(`<message to='${to}' type='headline' id='headline'><body>h</body></message>`);
    await a.send(`<message to='${to}' type='groupchat' id='groupchat'><body>g</body></message>`);
    await a.send(`<message to='${to}' type='error' id='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    const kept = ["chat", "normal", "receipt", "store"];
    expect((await query(b)).ids).toEqual(kept);
    expect((await query(a)).ids).toEqual(kept);
    // Chat states are not kept with a message.
    await a.send(chat(to, "with-state", "<active xmlns='http://jabber.org/protocol/chatstates'/>"));
    const [last] = (await query(b, { set: "<max>1</max><before/>" })).results;
    expect(last!.getChild("result", NS)!.getChild("forwarded")!.getChild("message")!.getChildElements().map((c) => c.name)).toEqual(["body"]);
  });

  it("archives a message between two resources of one account once, and never a carbon copy", async () => {
    h = await Harness.create(["alice", "bob"]);
    const a = await online(`${alice}/a`);
    const a2 = await online(`${alice}/a2`);
    await a2.request(`<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>`);
    const b = await online(`${bob}/b`);
    await a.send(chat(a2.jid, "own"));
    await a.send(chat(b.jid, "out"));
    await b.send(chat(a.jid, "in"));
    // a2 got carbons of "out" and "in": they are in no archive again.
    expect((await query(a)).ids).toEqual(["own", "out", "in"]);
    expect((await query(b)).ids).toEqual(["out", "in"]);
  });

  it("follows the user's preferences, and answers them; the default is to archive everything", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"]);
    await h.rosterItem("alice", "carol", { subscription: "both" });
    const a = await online(`${alice}/a`);
    const [prefs] = await a.request(`<iq type='get' id='p'><prefs xmlns='${NS}'/></iq>`);
    expect(prefs!.getChild("prefs", NS)!.attrs.default).toBe(MAM_OPTIONS.default_policy.default);
    expect(MAM_OPTIONS.default_policy.default).toBe("always");

    const set = `<iq type='set' id='s'><prefs xmlns='${NS}' default='roster'><always><jid>dave@${DOMAIN}/x</jid></always><never><jid>${bob}</jid></never></prefs></iq>`;
    const [answer] = await a.request(set);
    expect(answer!.attrs.type).toBe("result");
    const p = answer!.getChild("prefs", NS)!;
    expect(p.attrs.default).toBe("roster");
    expect(p.getChild("always")!.getChildren("jid").map((j) => j.getText())).toEqual([`dave@${DOMAIN}`]);
    expect(p.getChild("never")!.getChildren("jid").map((j) => j.getText())).toEqual([bob]);

    for (const who of ["bob", "carol", "dave"]) await a.send(chat(`${who}@${DOMAIN}`, who));
    await a.send(chat(`eve@${DOMAIN}`, "eve")); // neither listed nor in the roster
    expect((await query(a)).ids).toEqual(["carol", "dave"]);

    const [bad] = await a.request(`<iq type='set' id='b'><prefs xmlns='${NS}' default='sometimes'/></iq>`);
    expect(conditionOf(bad!)).toBe("bad-request");
    const many = Array.from({ length: 100 }, (_, i) => `<jid>${"x".repeat(1000)}${i}@${DOMAIN}</jid>`).join("");
    const [big] = await a.request(`<iq type='set' id='big'><prefs xmlns='${NS}' default='always'><never>${many}</never></prefs></iq>`);
    expect(conditionOf(big!)).toBe("policy-violation");
    // Refused ones change nothing.
    const [still] = await a.request(`<iq type='get' id='p2'><prefs xmlns='${NS}'/></iq>`);
    expect(still!.getChild("prefs", NS)!.attrs.default).toBe("roster");
  });

  describe("paging", () => {
    /** alice's archive with `n` messages to bob, m0 the oldest, a second apart. */
    async function filled(n: number): Promise<{ a: Client; ids: string[] }> {
      h = await Harness.create(["alice", "bob"]);
      const base = Date.parse("2026-01-01T00:00:00Z");
      const items = Array.from({ length: n }, (_, i) => ({
        stamp: new Date(base + i * 1000),
        with: i % 2 === 0 ? bob : `carol@${DOMAIN}`,
        xml: `<message xmlns='jabber:client' from='${alice}/a' to='${i % 2 === 0 ? bob : `carol@${DOMAIN}`}' type='chat' id='m${i}'><body>${i}</body></message>`,
      }));
      const ids = await h.store.appendArchive(alice, "mam", items);
      return { a: await online(`${alice}/a`), ids };
    }

    it("pages forward with after, backward with before, the last page with an empty before, and flips a page", async () => {
      const { a, ids } = await filled(7);
      const first = await query(a, { set: "<max>3</max>" });
      expect(first.ids).toEqual(["m0", "m1", "m2"]);
      expect(first.fin!.attrs.complete).toBeUndefined();
      expect(setOf(first.fin)).toEqual({ first: ids[0], last: ids[2], count: "7" });
      const next = await query(a, { set: `<max>3</max><after>${ids[2]}</after>` });
      expect(next.ids).toEqual(["m3", "m4", "m5"]);
      const end = await query(a, { set: `<max>3</max><after>${ids[5]}</after>` });
      expect(end.ids).toEqual(["m6"]);
      expect(end.fin!.attrs.complete).toBe("true");

      const last = await query(a, { set: "<max>3</max><before/>" });
      expect(last.ids).toEqual(["m4", "m5", "m6"]);
      expect(last.fin!.attrs.complete).toBeUndefined();
      expect(setOf(last.fin)).toMatchObject({ first: ids[4], last: ids[6] });
      const back = await query(a, { set: `<max>3</max><before>${ids[1]}</before>` });
      expect(back.ids).toEqual(["m0"]);
      expect(back.fin!.attrs.complete).toBe("true");

      const flipped = await query(a, { set: "<max>3</max><before/>", flip: true });
      expect(flipped.ids).toEqual(["m6", "m5", "m4"]);
    });

    it("filters by with, start and end, and by after-id and before-id, and counts what passes", async () => {
      const { a, ids } = await filled(7);
      expect((await query(a, { form: { with: bob } })).ids).toEqual(["m0", "m2", "m4", "m6"]);
      const window = await query(a, { form: { start: "2026-01-01T00:00:02Z", end: "2026-01-01T00:00:04.000Z" } });
      expect(window.ids).toEqual(["m2", "m3", "m4"]);
      expect(setOf(window.fin).count).toBe("3");
      expect((await query(a, { form: { with: `${bob}/res`, start: "2026-01-01T01:00:02+01:00" } })).ids).toEqual(["m2", "m4", "m6"]);
      expect((await query(a, { form: { "after-id": ids[4]! } })).ids).toEqual(["m5", "m6"]);
      expect((await query(a, { form: { "before-id": ids[4]! }, set: "<max>2</max>" })).ids).toEqual(["m0", "m1"]);
      expect((await query(a, { form: { "after-id": ids[1]!, "before-id": ids[4]! } })).ids).toEqual(["m2", "m3"]);
    });

    it("uses a default page, clamps a larger max to the service's, and answers max 0 with the count alone", async () => {
      const { a } = await filled(MAM_OPTIONS.max_page.default + 5);
      expect((await query(a)).ids).toHaveLength(MAM_OPTIONS.default_page.default);
      const big = await query(a, { set: "<max>100000</max>" });
      expect(big.ids).toHaveLength(MAM_OPTIONS.max_page.default);
      expect(big.fin!.attrs.complete).toBeUndefined();
      const none = await query(a, { set: "<max>0</max>" });
      expect(none.ids).toEqual([]);
      expect(setOf(none.fin)).toEqual({ first: undefined, last: undefined, count: String(MAM_OPTIONS.max_page.default + 5) });
    });

    it("answers errors as XEP-0313 names them", async () => {
      const { a } = await filled(3);
      const cases: [Parameters<typeof query>[1], string][] = [
        [{ set: "<after>nope</after>" }, "item-not-found"],
        [{ set: "<before>nope</before>" }, "item-not-found"],
        [{ form: { "after-id": "nope" } }, "item-not-found"],
        [{ form: { start: "yesterday" } }, "bad-request"],
        [{ form: { with: "@@" } }, "bad-request"],
        [{ form: { colour: "red" } }, "bad-request"],
        [{ set: "<max>-1</max>" }, "bad-request"],
        [{ set: "<index>1</index>" }, "feature-not-implemented"],
      ];
      for (const [opts, condition] of cases) {
        const answer = await query(a, opts);
        expect([answer.iq.attrs.type, conditionOf(answer.iq), answer.results]).toEqual(["error", condition, []]);
      }
      const [wrongType] = await a.request(
        `<iq type='set' id='w'><query xmlns='${NS}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></query></iq>`,
      );
      expect(conditionOf(wrongType!)).toBe("bad-request");
      // Another account's archive is not the querier's to read.
      const [other] = await a.request(`<iq type='set' id='o' to='${bob}'><query xmlns='${NS}'/></iq>`);
      expect(other!.attrs.type).toBe("error");
    });
  });
});
