// The module platform in the sm: the outgoing filter chain every stanza to
// a client passes (changed, dropped, bounced, held and released) without
// breaking the acknowledgement, offline or XEP-0198 accounting; and the
// per-session module state that follows a session to another sm.
import { clone, type Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload, type ModuleState } from "../lib/link/session-payload.js";
import { defineModule, type Outgoing } from "../sm/module-api.js";
import { NO_MODULE_SETTINGS, enabledModules } from "../sm/module-config.js";
import { capsVer } from "../sm/pep-caps.js";
import { MODULES } from "../sm/modules.js";
import { UNNAMED } from "../sm/origin.js";
import { CLIENT_NODE, capsPresence, discoInfo, drain } from "./harness/caps-client.js";
import { Client, DOMAIN, Harness, conditionOf, type Frame } from "./sm-harness.js";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const CAROL = `carol@${DOMAIN}`;

/** What the probe module saw and holds. */
let held: Outgoing[] = [];
let release: (out: Outgoing) => void;
let rebuiltWith: unknown[] = [];

/**
 * A test module: its filter acts on a message's body ("change", "drop",
 * "bounce", "hold"); an iq sets its state for the session, which it reports
 * when the session is rebuilt.
 */
const probe = defineModule({
  name: "probe",
  doc: "A module for the tests.",
  enabled: true,
  options: {},
  setup: (api) => {
    const note = api.sessionState<{ note: string }>();
    const handle = api.filter((out) => {
      const body = out.stanza.getChildText("body");
      if (body === "drop") return "drop";
      if (body === "bounce") return { bounce: "service-unavailable", text: "blocked" };
      if (body === "hold") {
        held.push(out);
        return "hold";
      }
      if (body !== "change") return undefined;
      const changed = clone(out.stanza);
      changed.getChild("body")!.children = ["changed"];
      return { stanza: changed };
    });
    // From the test, outside any of the sm's work.
    release = (out) => handle.release(UNNAMED, out);
    api.hook("iq-set/self/urn:test:probe:note", async (event) => {
      note.set(event.origin!, { note: event.stanza.getChild("note")!.getText() });
      await api.reply(event, clone(event.stanza).attr("type", "result"));
      return true;
    });
    api.hook("session-rebuilt", ({ session }) => void rebuiltWith.push(note.get(session)));
  },
});

const withProbe = () => enabledModules([...MODULES, probe], NO_MODULE_SETTINGS);
const message = (to: string, body: string, id = body) => `<message type='chat' id='${id}' to='${to}'><body>${body}</body></message>`;
const bodies = (stanzas: Element[]) => stanzas.map((s) => s.getChildText("body"));
const delivers = (frames: Frame[]) => frames.filter((f) => f.op === SessionOp.Deliver);
const states = (h: Harness): ModuleState[] => h.port.take((f) => f.op === SessionOp.SessionState).map((f) => f.meta as ModuleState);

async function rebuild(h: Harness, jid: string, sid: string, state: ModuleState | undefined, presence = "<presence/>"): Promise<Client> {
  const user = jid.split("/")[0]!;
  const meta = { sid, jid, ip: "127.0.0.1", secure: true, interested: false, ...(state && { state }) };
  await h.route("c2s-2", user, encodeSessionPayload(SessionOp.Rebuild, meta, presence));
  h.port.take((f) => f.op === SessionOp.Started);
  return new Client(h, "c2s-2", sid, jid);
}

describe("sm module platform", () => {
  const harnesses: Harness[] = [];
  const create = async (users: string[]) => {
    const h = await Harness.create(users, { modules: withProbe() });
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.close();
    held = [];
    rebuiltWith = [];
  });

  it("passes every stanza to a client through the filters: changed, dropped, or bounced to its sender", async () => {
    const h = await create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`${BOB}/b`);
    await alice.online();
    await bob.online();
    for (const body of ["change", "drop", "bounce", "plain"]) await bob.send(message(`${ALICE}/a`, body));
    expect(bodies(alice.received())).toEqual(["changed", "plain"]);
    const [bounced, ...more] = bob.received();
    expect(more).toEqual([]);
    expect(bounced!.attrs).toMatchObject({ type: "error", id: "bounce", from: `${ALICE}/a`, to: `${BOB}/b` });
    expect(conditionOf(bounced!)).toBe("service-unavailable");
  });

  it("takes a client's stanza whose delivery a filter dropped or held, and numbers for XEP-0198 only what it writes", async () => {
    const h = await create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`${BOB}/b`);
    await h.route("c2s-1", ALICE, encodeSessionPayload(SessionOp.Resumable, { sid: alice.sid, id: "r1", max: 300, stanzas: 100, bytes: 1 << 20 }));
    // Bob's stanzas whose deliveries a filter dropped or held are taken at once: they wait on no DELIVERED.
    await bob.sendNumbered(message(`${ALICE}/a`, "drop"), 1);
    await bob.sendNumbered(message(`${ALICE}/a`, "hold"), 2);
    // TAKEN counts are cumulative; an archive commit may end a turn between the two.
    const taken: unknown[] = [];
    await expect
      .poll(() => {
        taken.push(...h.port.take((f) => f.op === SessionOp.Taken).map((f) => f.meta));
        return taken.at(-1);
      })
      .toEqual({ taken: { [bob.sid]: 2 } });
    await bob.sendNumbered(message(`${ALICE}/a`, "one"), 3);
    await bob.sendNumbered(message(`${ALICE}/a`, "two"), 4);
    let written = delivers(alice.frames());
    // Numbered for DELIVERED too, apart: `num` counts every DELIVER with an identity to the front end.
    const num = (written[0]!.meta as { num: number }).num;
    expect(written.map((f) => [f.xml.toString().match(/<body>(\w+)</)![1], f.meta])).toEqual([
      ["one", { sid: alice.sid, origin: `c2s-1/${bob.sid}/3.0`, n: 1, num }],
      ["two", { sid: alice.sid, origin: `c2s-1/${bob.sid}/4.0`, n: 2, num: num + 1 }],
    ]);
    // Released, the held one is written after them, with the next number, under the name of the work that made it (protocol §2.5).
    expect(held).toHaveLength(1);
    release(held[0]!);
    written = delivers(alice.frames());
    expect(written).toHaveLength(1);
    expect(written[0]!.xml.toString()).toContain("<body>hold</body>");
    expect(written[0]!.meta).toMatchObject({ n: 3, origin: `c2s-1/${bob.sid}/2.0`, num: num + 2 });
  });

  it("routes a held message again when its session ended meanwhile: nothing is lost", async () => {
    const h = await create(["alice", "bob"]);
    const alice = await h.connect(`${ALICE}/a`);
    const bob = await h.connect(`${BOB}/b`);
    await alice.online();
    await bob.send(message(`${ALICE}/a`, "hold"));
    await alice.end();
    release(held[0]!);
    await h.sm.idle();
    const stored = await h.store.loadOffline(ALICE, { limit: 10, maxBytes: 1 << 20 });
    expect(stored.map((m) => m.xml)).toEqual([expect.stringContaining("<body>hold</body>")]);
  });

  it("deletes the offline messages a filter drops, and ends the batch on the last one written", async () => {
    const h = await create(["alice", "bob"]);
    const bob = await h.connect(`${BOB}/b`);
    for (const body of ["one", "drop", "two", "bounce"]) await bob.send(message(ALICE, body));
    expect(bob.received()).toEqual([]);
    const alice = await h.connect(`${ALICE}/a`);
    await alice.send("<presence/>");
    const written = delivers(alice.frames()).filter((f) => (f.meta as { confirm?: number }).confirm !== undefined);
    expect(written.map((f) => f.xml.toString().match(/<body>(\w+)</)![1])).toEqual(["one", "two"]);
    expect(written.map((f) => (f.meta as { last?: boolean }).last ?? false)).toEqual([false, true]);
    // The bounced one answered its sender; both dropped ones are gone from the store, the written ones wait for WRITTEN.
    expect(bob.received().map((s) => [s.attrs.id, conditionOf(s)])).toEqual([["bounce", "service-unavailable"]]);
    expect(await h.store.loadOffline(ALICE, { limit: 10, maxBytes: 1 << 20 })).toHaveLength(2);
    await alice.written((written[1]!.meta as { confirm: number }).confirm);
    expect(await h.store.loadOffline(ALICE, { limit: 10, maxBytes: 1 << 20 })).toEqual([]);
  });

  it("sends a module's session state to the front end, and restores it from REBUILD before session-rebuilt", async () => {
    const h = await create(["alice"]);
    const alice = await h.connect(`${ALICE}/a`);
    await alice.send(`<iq type='set' id='n'><note xmlns='urn:test:probe'>kept</note></iq>`);
    expect(states(h)).toEqual([{ sid: alice.sid, state: { probe: { note: "kept" } } }]);
    // An idle session that no module set state for holds none and is sent none.
    await h.connect(`${ALICE}/idle`);
    expect(states(h)).toEqual([]);

    // The user's new sm gets the state back with REBUILD.
    const other = await create(["alice"]);
    await rebuild(other, `${ALICE}/a`, "r1", { probe: { note: "kept" } });
    await rebuild(other, `${ALICE}/b`, "r2", undefined);
    expect(rebuiltWith).toEqual([{ note: "kept" }, undefined]);
  });

  it("tells the JIDs a session directed presence to that it left, after it was rebuilt on another sm", async () => {
    const h = await create(["alice", "carol"]);
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    await alice.send(`<presence to='${CAROL}/c'/>`);
    const [state] = states(h);
    expect(state).toEqual({ sid: alice.sid, state: { presence: [`${CAROL}/c`] } });

    // Moved to another sm, which never saw the directed presence.
    const other = await create(["alice", "carol"]);
    const carol = await other.connect(`${CAROL}/c`);
    await carol.online();
    const moved = await rebuild(other, `${ALICE}/a`, "r1", (state as { state: ModuleState }).state);
    await moved.send("<presence type='unavailable'/>");
    expect(carol.received().map((p) => [p.attrs.type, p.attrs.from])).toEqual([["unavailable", `${ALICE}/a`]]);
    // The state now says no one is owed an unavailable.
    expect(states(other)).toEqual([{ sid: "r1", state: {} }]);
  });

  it("brings a PEP owner's audience (its contacts' caps) along when its session is rebuilt on another sm", async () => {
    const features = [`${MOOD}+notify`];
    const h = await create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const alice = await h.connect(`${ALICE}/a`);
    await alice.online();
    const bob = await h.connect(`${BOB}/b`);
    await bob.send(capsPresence(features));
    await drain(h, bob, features);
    const kept = states(h).filter((s) => s.sid === alice.sid).at(-1)!.state as ModuleState;
    expect(kept.pep).toEqual({ [`${BOB}/b`]: [CLIENT_NODE, capsVer(discoInfo(features)), "sha-1"] });

    // Both move to a new sm, which has not seen bob's caps: alice's state tells it; it asks bob's client
    // what the 'ver' means, and sends him no last items for that (his interest is not new).
    const other = await create(["alice", "bob"]);
    await other.mutual("alice", "bob");
    const movedBob = await rebuild(other, `${BOB}/b`, "rb", undefined, capsPresence(features));
    const movedAlice = await rebuild(other, `${ALICE}/a`, "ra", kept);
    expect((await drain(other, movedBob, features)).rest).toEqual([]);
    await movedAlice.send(`<iq type='set' id='pub'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${MOOD}'><item id='m1'><mood xmlns='${MOOD}'><happy/></mood></item></publish></pubsub></iq>`);
    await drain(other, movedAlice, []);
    const notes = movedBob.received().filter((m) => m.getChild("event", "http://jabber.org/protocol/pubsub#event"));
    expect(notes.map((m) => m.attrs.from)).toEqual([ALICE]);
  });

  it("keeps carbons on for a session rebuilt on another sm", async () => {
    const h = await create(["alice"]);
    const phone = await h.connect(`${ALICE}/phone`);
    await phone.send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    const [state] = states(h);
    expect(state).toEqual({ sid: phone.sid, state: { carbons: true } });

    const other = await create(["alice", "bob"]);
    const moved = await rebuild(other, `${ALICE}/phone`, "rp", (state as { state: ModuleState }).state);
    const desk = await other.connect(`${ALICE}/desk`);
    await desk.online();
    const bob = await other.connect(`${BOB}/b`);
    await bob.send(message(`${ALICE}/desk`, "hi"));
    const copies = moved.received().filter((m) => m.getChild("received", "urn:xmpp:carbons:2"));
    expect(copies.map((m) => m.attrs.to)).toEqual([`${ALICE}/phone`]);
  });
});

const MOOD = "http://jabber.org/protocol/mood";
