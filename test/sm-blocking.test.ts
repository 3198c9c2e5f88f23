// XEP-0191 blocking command in the sm: the blocklist's protocol (get, block,
// unblock, pushes, errors, quota), and the blocks honoured both ways for
// messages, presence and iq, offline storage included, and on the
// recipient's sm when the blocking sender is on another.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { enabledModules } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { Client, DOMAIN, Harness, conditionOf } from "./sm-harness.js";

const NS = "urn:xmpp:blocking";
const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;

const items = (jids: string[]) => jids.map((j) => `<item jid='${j}'/>`).join("");
const block = (...jids: string[]) => `<iq type='set' id='b'><block xmlns='${NS}'>${items(jids)}</block></iq>`;
const unblock = (...jids: string[]) => `<iq type='set' id='u'><unblock xmlns='${NS}'>${items(jids)}</unblock></iq>`;
const getList = `<iq type='get' id='g'><blocklist xmlns='${NS}'/></iq>`;
const chat = (to: string, id: string) => `<message type='chat' to='${to}' id='${id}'><body>${id}</body></message>`;
const answer = (stanzas: Element[], id: string) => stanzas.find((s) => s.attrs.id === id);
const ids = (stanzas: Element[]) => stanzas.map((s) => s.attrs.id);

async function blocklist(c: Client): Promise<string[]> {
  const got = answer(await c.request(getList), "g")!;
  return got.getChild("blocklist", NS)!.getChildren("item").map((i) => i.attrs.jid);
}

describe("XEP-0191 blocking command", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });
  const online = async (jid: string): Promise<Client> => {
    const c = await h.connect(jid);
    await c.online();
    return c;
  };
  /** alice and bob online, alice blocking bob; what either received so far read. */
  const aliceBlocksBob = async (): Promise<{ alice: Client; bob: Client }> => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await online(`${ALICE}/a`);
    const bob = await online(`${BOB}/b`);
    await alice.request(block(BOB));
    bob.received();
    return { alice, bob };
  };

  it("keeps the list, pushes each change to the resources that asked for it, and is advertised", async () => {
    h = await Harness.create(["alice"]);
    const phone = await online(`${ALICE}/phone`);
    const laptop = await online(`${ALICE}/laptop`);
    const [info] = await phone.request(`<iq type='get' id='i' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
    expect(await blocklist(phone)).toEqual([]);

    // Normalized; blocking twice is no error.
    const blocked = await phone.request(block("Romeo@Example.NET", "example.org", "romeo@example.net"));
    expect(answer(blocked, "b")!.attrs.type).toBe("result");
    const push = blocked.find((s) => s.attrs.type === "set")!;
    expect(push.getChild("block", NS)!.getChildren("item").map((i) => i.attrs.jid)).toEqual(["romeo@example.net", "example.org", "romeo@example.net"]);
    // laptop never asked: no push.
    expect(laptop.received()).toEqual([]);
    expect((await blocklist(laptop)).sort()).toEqual(["example.org", "romeo@example.net"]);

    await laptop.send(unblock("example.org"));
    expect(phone.received().map((s) => s.getChild("unblock", NS)?.getChildren("item").map((i) => i.attrs.jid))).toEqual([["example.org"]]);
    expect(await blocklist(phone)).toEqual(["romeo@example.net"]);
    // No items: everything unblocked, and pushed as asked.
    await phone.send(block("a@example.net", "b@example.net"));
    phone.received();
    const all = await laptop.request(unblock());
    expect(answer(all, "u")!.attrs.type).toBe("result");
    expect(all.find((s) => s.attrs.type === "set")!.getChild("unblock", NS)!.children).toEqual([]);
    expect(await blocklist(phone)).toEqual([]);
    expect(await h.store.listKvKeys(ALICE, "blocking")).toEqual([]);
  });

  it("refuses an empty block, a malformed JID and a list past max_items, storing nothing of them", async () => {
    h = await Harness.create(["alice"], { modules: enabledModules(MODULES, { table: { blocking: { max_items: 2 } }, env: {} }) });
    const alice = await online(`${ALICE}/a`);
    expect(conditionOf(answer(await alice.request(block()), "b")!)).toBe("bad-request");
    expect(conditionOf(answer(await alice.request(block("ok@example.net", "bad@@example.net")), "b")!)).toBe("jid-malformed");
    expect(await blocklist(alice)).toEqual([]);
    expect(answer(await alice.request(block("a@example.net", "b@example.net")), "b")!.attrs.type).toBe("result");
    expect(conditionOf(answer(await alice.request(block("c@example.net")), "b")!)).toBe("policy-violation");
    // Already there: no room needed.
    expect(answer(await alice.request(block("a@example.net")), "b")!.attrs.type).toBe("result");
    expect(await blocklist(alice)).toEqual(["a@example.net", "b@example.net"]);
  });

  it("bounces messages and iq requests from a blocked JID, drops its presence and other stanzas, and stores nothing offline", async () => {
    const { alice, bob } = await aliceBlocksBob();

    await bob.send(chat(ALICE, "m1"));
    await bob.send(`<message type='headline' to='${ALICE}' id='h1'><body>h</body></message>`);
    await bob.send(`<presence to='${alice.jid}'/>`);
    await bob.send(`<iq type='get' id='v' to='${ALICE}'><vCard xmlns='vcard-temp'/></iq>`);
    await bob.send(`<iq type='get' id='p' to='${alice.jid}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    expect(alice.received()).toEqual([]);
    const bounced = bob.received();
    expect(bounced.map((s) => [s.name, s.attrs.id, conditionOf(s)])).toEqual([
      ["message", "m1", "service-unavailable"],
      ["iq", "v", "service-unavailable"],
      ["iq", "p", "service-unavailable"],
    ]);

    // Offline: bounced, not stored.
    await alice.end();
    await bob.send(chat(ALICE, "m2"));
    expect(ids(bob.received())).toEqual(["m2"]);
    expect(await h.store.loadOffline(ALICE, { limit: 10, maxBytes: 1 << 20 })).toEqual([]);
  });

  it("matches as §3.1 says: a domain blocks its users and resources, a full JID only that resource", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    const alice = await online(`${ALICE}/a`);
    const bob1 = await online(`${BOB}/one`);
    const bob2 = await online(`${BOB}/two`);
    const carol = await online(`carol@${DOMAIN}/c`);
    await alice.request(block(`${BOB}/one`));
    for (const c of [bob1, bob2, carol]) c.received();
    await bob1.send(chat(ALICE, "x1"));
    await bob2.send(chat(ALICE, "x2"));
    expect(ids(alice.received())).toEqual(["x2"]);
    await alice.request(block(DOMAIN));
    await carol.send(chat(ALICE, "x3"));
    expect(alice.received()).toEqual([]);
    expect(conditionOf(carol.received()[0]!)).toBe("service-unavailable");
  });

  it("refuses what the user sends to a blocked JID with not-acceptable and <blocked/>, dropping answers", async () => {
    const { alice, bob } = await aliceBlocksBob();
    for (const stanza of [chat(BOB, "o1"), `<presence to='${BOB}' id='o2'/>`, `<iq type='get' id='o3' to='${bob.jid}'><ping xmlns='urn:xmpp:ping'/></iq>`]) {
      const [refused] = await alice.request(stanza);
      expect(conditionOf(refused!)).toBe("not-acceptable");
      expect(refused!.getChild("error")!.getChild("blocked", `${NS}:errors`)).toBeTruthy();
    }
    await alice.send(`<iq type='result' id='r' to='${bob.jid}'/>`);
    expect(alice.received()).toEqual([]);
    expect(bob.received()).toEqual([]);
  });

  it("hides the user's presence from a blocked contact: unavailable on block, none meanwhile, current presence on unblock", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const alice = await online(`${ALICE}/a`);
    const bob = await online(`${BOB}/b`);
    alice.received();
    bob.received();

    await alice.request(block(BOB));
    const gone = bob.received();
    expect(gone.map((s) => [s.name, s.attrs.type, s.attrs.from])).toEqual([["presence", "unavailable", alice.jid]]);
    await alice.send("<presence><show>away</show></presence>");
    expect(bob.received()).toEqual([]);
    expect(alice.received().map((s) => s.attrs.from)).toEqual([alice.jid]); // her own, reflected
    // Nor does bob's presence reach alice, nor do his probes learn anything.
    await bob.send("<presence><show>dnd</show></presence>");
    expect(bob.received().map((s) => s.attrs.from)).toEqual([bob.jid]);
    expect(alice.received()).toEqual([]);

    await alice.request(unblock(BOB));
    const back = bob.received();
    expect(back.map((s) => [s.name, s.attrs.type, s.getChildText("show")])).toEqual([["presence", undefined, "away"]]);
  });

  it("drops presence from a blocking user's sm on the contact's sm, reading the sender's list from the store", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`${BOB}/b`);
    bob.received();
    // alice is on sm-2, which stored her block; sm-2 forwards her broadcast here.
    h.port.owner = (key) => (key === ALICE ? "sm-2" : "sm-1");
    await h.store.putKv(ALICE, "blocking", BOB, "");
    const forward = (xml: string) => h.route("sm-2", BOB, encodeSessionPayload(SessionOp.Forward, {}, xml));
    await forward(`<presence from='${ALICE}/a' to='${BOB}'><show>chat</show></presence>`);
    await forward(`<message type='headline' from='${ALICE}' to='${BOB}' id='pep'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`);
    expect(bob.received()).toEqual([]);
    // What tells bob nothing he may not know still comes: unavailable presence, and answers to his own stanzas.
    await forward(`<presence type='unavailable' from='${ALICE}/a' to='${BOB}'/>`);
    await forward(`<message type='error' from='${ALICE}' to='${bob.jid}' id='e'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    expect(bob.received().map((s) => [s.name, s.attrs.type])).toEqual([
      ["presence", "unavailable"],
      ["message", "error"],
    ]);
    await h.store.deleteKv(ALICE, "blocking", BOB);
    await forward(`<presence from='${ALICE}/a' to='${BOB}'/>`);
    expect(bob.received()).toHaveLength(1);
  });

  it("bounces offline messages stored before the block when they would be delivered", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    const bob = await online(`${BOB}/b`);
    const carol = await online(`carol@${DOMAIN}/c`);
    await bob.send(chat(ALICE, "before"));
    await carol.send(chat(ALICE, "kept"));
    await h.store.putKv(ALICE, "blocking", BOB, "");
    const alice = await h.connect(`${ALICE}/a`);
    expect(ids(await alice.online()).filter((id) => id !== undefined)).toEqual(["kept"]);
    expect(bob.received().map((s) => [s.attrs.id, conditionOf(s)])).toEqual([["before", "service-unavailable"]]);
    expect(await h.store.loadOffline(ALICE, { limit: 10, maxBytes: 1 << 20 })).toHaveLength(1);
  });

  it("keeps a session's interest in pushes, and its list, when the session is rebuilt from its front end", async () => {
    h = await Harness.create(["alice", "bob"]);
    const phone = await online(`${ALICE}/phone`);
    await phone.send(getList);
    const [frame] = h.port.take((f) => f.op === SessionOp.SessionState);
    const state = (frame!.meta as { state: Record<string, unknown> }).state;
    expect(state).toEqual({ blocking: true });
    await phone.send(block(BOB));
    phone.received();
    await phone.end();
    // Its sm failed: the front end rebuilds it (here on the same sm, whose memory of the user went with the session).
    const meta = { sid: "r1", jid: phone.jid, ip: "127.0.0.1", secure: true, interested: false, state };
    await h.route("c2s-2", ALICE, encodeSessionPayload(SessionOp.Rebuild, meta, "<presence/>"));
    h.port.take((f) => f.op === SessionOp.Started);
    const rebuilt = new Client(h, "c2s-2", "r1", phone.jid);
    const laptop = await online(`${ALICE}/laptop`);
    await laptop.send(block("eve@example.net"));
    expect(rebuilt.received().filter((s) => s.getChild("block", NS))).toHaveLength(1);
    const bob = await online(`${BOB}/b`);
    await bob.send(chat(phone.jid, "r"));
    expect(rebuilt.received()).toEqual([]);
    expect(conditionOf(bob.received()[0]!)).toBe("service-unavailable");
  });

  it("forgets a blocked contact's pending request for the user's presence, which the user could no longer refuse", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await online(`${BOB}/b`);
    await bob.send(`<presence type='subscribe' to='${ALICE}'/>`);
    expect((await h.store.getRosterItem(ALICE, BOB))?.pendingIn).toBe(true);
    const alice = await h.connect(`${ALICE}/a`);
    await alice.send(block(BOB));
    expect(await h.store.getRosterItem(ALICE, BOB)).toBeNull();
    // Nor is it given at login.
    expect((await alice.online()).filter((s) => s.name === "presence" && s.attrs.from !== alice.jid)).toEqual([]);
  });
});
