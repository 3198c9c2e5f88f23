// Sessions: binding, conflicts, limits, and sessions ending because their
// c2s went away.
import { parse } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SM_ADDRESS } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { DOMAIN, Harness } from "./sm-harness.js";

describe("sm sessions", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("binds the requested resource, or generates distinct ones", async () => {
    h = await Harness.create(["alice"]);
    const phone = await h.startFrame(`alice@${DOMAIN}/phone`);
    expect(phone.op).toBe(SessionOp.Started);
    expect(phone.meta).toMatchObject({ jid: `alice@${DOMAIN}/phone` });
    expect(phone.key).toBe(`alice@${DOMAIN}`);

    const a = await h.connect(`alice@${DOMAIN}`);
    const b = await h.connect(`ALICE@${DOMAIN}`);
    expect(a.jid).toMatch(new RegExp(`^alice@${DOMAIN}/.+`));
    expect(b.jid).toMatch(new RegExp(`^alice@${DOMAIN}/.+`));
    expect(new Set([a.jid, b.jid, `alice@${DOMAIN}/phone`]).size).toBe(3);
  });

  it("refuses unknown accounts and unserved domains", async () => {
    h = await Harness.create(["alice"]);
    expect(await h.startFrame(`mallory@${DOMAIN}/x`)).toMatchObject({
      op: SessionOp.StartFailed,
      meta: { condition: "not-authorized" },
    });
    expect(await h.startFrame("alice@elsewhere.org/x")).toMatchObject({
      op: SessionOp.StartFailed,
      meta: { condition: "not-authorized" },
    });
  });

  it("gives a taken resource to the new session and closes the old one with conflict", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const bob = await h.connect(`bob@${DOMAIN}/desk`);
    await bob.online();
    const old = await h.connect(`alice@${DOMAIN}/phone`, "c2s-1");
    await old.online();
    bob.received();

    const answer = await h.startFrame(`alice@${DOMAIN}/phone`, "c2s-2", "new");
    expect(answer).toMatchObject({ op: SessionOp.Started, meta: { sid: "new", jid: `alice@${DOMAIN}/phone` } });
    const closed = old.frames();
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ op: SessionOp.Close, meta: { condition: "conflict" } });
    // The old session's contacts saw it go.
    const seen = bob.received();
    expect(seen.map((p) => [p.attrs.type, p.attrs.from])).toEqual([["unavailable", `alice@${DOMAIN}/phone`]]);
    // Its stanzas no longer count: the c2s is told the session is unknown.
    await old.send("<presence/>");
    expect(old.frames()).toMatchObject([{ op: SessionOp.Close, meta: { condition: "internal-server-error" } }]);
  });

  it("enforces the per-user session limit", async () => {
    h = await Harness.create(["alice"], { maxSessionsPerUser: 2 });
    await h.connect(`alice@${DOMAIN}/a`);
    await h.connect(`alice@${DOMAIN}/b`);
    expect(await h.startFrame(`alice@${DOMAIN}/c`)).toMatchObject({
      op: SessionOp.StartFailed,
      meta: { condition: "resource-constraint" },
    });
    // Replacing a resource does not add a session.
    expect((await h.startFrame(`alice@${DOMAIN}/a`)).op).toBe(SessionOp.Started);
  });

  it("ends every session of a c2s that leaves the member table", async () => {
    h = await Harness.create(["alice", "bob", "carol"]);
    await h.mutual("alice", "carol");
    await h.mutual("bob", "carol");
    const alice = await h.connect(`alice@${DOMAIN}/a`, "c2s-1");
    const bob = await h.connect(`bob@${DOMAIN}/b`, "c2s-1");
    const carol = await h.connect(`carol@${DOMAIN}/c`, "c2s-2");
    await alice.online();
    await bob.online();
    await carol.online();
    for (const c of [alice, bob, carol]) c.frames();

    await h.members(["c2s-2", "sm-1"]);
    const gone = carol.received().map((p) => [p.attrs.type, p.attrs.from]);
    expect(gone).toEqual(
      expect.arrayContaining([
        ["unavailable", `alice@${DOMAIN}/a`],
        ["unavailable", `bob@${DOMAIN}/b`],
      ]),
    );
    expect(gone).toHaveLength(2);
    // No CLOSE goes to a c2s that is gone.
    expect(h.port.take((f) => f.to === "c2s-1")).toEqual([]);
    // A message for alice now waits offline.
    await carol.send(`<message to='alice@${DOMAIN}' type='chat'><body>hi</body></message>`);
    expect(await h.store.countOffline(`alice@${DOMAIN}`)).toBe(1);
  });

  it("ends the sessions of a c2s that comes back restarted under the same name", async () => {
    // A long grace: only the restart, not the absence, may end the session.
    h = await Harness.create(["alice"], { c2sGraceMs: 60_000 });
    const alice = await h.connect(`alice@${DOMAIN}/a`, "c2s-1");
    const table = (started: number) => [
      { name: "c2s-1", role: "c2s" as const, info: { started } },
      { name: "sm-1", role: "sm" as const, info: {} },
    ];
    h.sm.onMembers(table(1));
    await h.sm.idle();
    h.sm.onMembers([{ name: "sm-1", role: "sm", info: {} }]);
    h.sm.onMembers(table(2));
    await h.sm.idle();
    // Its old sid is unknown now: a stanza on it is refused.
    await alice.send("<presence/>");
    expect(h.port.take((f) => f.to === "c2s-1")).toMatchObject([{ op: SessionOp.Close, meta: { sid: alice.sid } }]);
  });

  it("ends a restarted c2s's old sessions a slice a turn, answering its new process's STARTs meanwhile, which it leaves alone", async () => {
    const users = Array.from({ length: 450 }, (_, i) => `u${i}`);
    h = await Harness.create([...users, "carol"], { c2sGraceMs: 60_000 });
    const table = (started: number) => [
      { name: "c2s-1", role: "c2s" as const, info: { started } },
      { name: "c2s-2", role: "c2s" as const, info: { started: 1 } },
      { name: "sm-1", role: "sm" as const, info: {} },
    ];
    h.sm.onMembers(table(1));
    for (const user of users) await h.connect(`${user}@${DOMAIN}/old`, "c2s-1");
    const carol = await h.connect(`carol@${DOMAIN}/c`, "c2s-2");
    h.port.take();
    h.sm.onMembers(table(2));
    // The first of them back, on the new process, before any old session has ended.
    h.sm.onRoute("c2s-1", `u0@${DOMAIN}`, encodeSessionPayload(SessionOp.Start, { sid: "new", jid: `u0@${DOMAIN}/new`, ip: "127.0.0.1", secure: true }));
    await new Promise((resolve) => setImmediate(resolve));
    // Answered in the first turn, while most of the old sessions are still held.
    expect(h.port.take((f) => f.op === SessionOp.Started)).toMatchObject([{ to: "c2s-1", meta: { sid: "new" } }]);
    expect(h.sm.load().sessions).toBeGreaterThan(users.length / 2);
    // A message to the new session meanwhile waits for its front end's word, not for the old sessions' end.
    const message = `<message from='${carol.jid}' to='u0@${DOMAIN}/new' type='chat'><body>back</body></message>`;
    h.sm.onRoute("c2s-2", carol.bare, encodeSessionPayload(SessionOp.Stanza, { sid: carol.sid, seq: 1 }, message));
    await h.sm.idle();
    // The old sessions ended without a word to the new process (it never held them); the new one stays.
    expect(h.port.take((f) => f.op === SessionOp.Close)).toEqual([]);
    expect(h.sm.load().sessions).toBe(2);
    // Delivered once: what waited for the new session was not taken for the old ones' and routed again.
    expect(h.port.take((f) => f.op === SessionOp.Deliver && f.meta.sid === "new")).toHaveLength(1);
    expect(await h.store.countOffline(`u0@${DOMAIN}`)).toBe(0);
    await h.route("c2s-1", `u0@${DOMAIN}`, encodeSessionPayload(SessionOp.Stanza, { sid: "new", seq: 1 }, "<presence/>"));
    expect(h.port.take((f) => f.op === SessionOp.Close)).toEqual([]);
  });

  it("tells a c2s that comes back, or every c2s after its own re-link, which sessions it holds for it", async () => {
    h = await Harness.create(["alice", "bob"], { c2sGraceMs: 60_000 });
    const alice = await h.connect(`alice@${DOMAIN}/a`, "c2s-1");
    const bob = await h.connect(`bob@${DOMAIN}/b`, "c2s-2");
    const table = (c2s: string[]) => [...c2s.map((name) => ({ name, role: "c2s" as const, info: { started: 1 } })), { name: "sm-1", role: "sm" as const, info: {} }];
    h.sm.onMembers(table(["c2s-1", "c2s-2"]));
    h.port.take();
    const lists = () => h.port.take((f) => f.op === SessionOp.Sessions).map((f) => [f.to, f.meta]);
    // c2s-1 was away, the same process: it is told, so that it ENDs what it no longer holds.
    h.sm.onMembers(table(["c2s-2"]));
    h.sm.onMembers(table(["c2s-1", "c2s-2"]));
    expect(lists()).toEqual([["c2s-1", { sids: [alice.sid] }]]);
    // This sm re-linked (an END may have been lost with the old router): every c2s is told.
    h.sm.onRelinked();
    h.sm.onMembers(table(["c2s-1", "c2s-2"]));
    expect(lists()).toEqual([
      ["c2s-1", { sids: [alice.sid] }],
      ["c2s-2", { sids: [bob.sid] }],
    ]);
    // The c2s's END for a ghost ends it.
    h.port.take();
    await h.route("c2s-1", `alice@${DOMAIN}`, encodeSessionPayload(SessionOp.End, { sid: alice.sid }));
    await alice.send("<presence/>");
    expect(h.port.take((f) => f.to === "c2s-1")).toMatchObject([{ op: SessionOp.Close, meta: { sid: alice.sid } }]);
  });

  it("hands sessions of users another sm now owns over silently, and passes their stanzas on once", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await alice.send("<presence/>");
    alice.frames();
    h.port.owner = (key) => (key === `alice@${DOMAIN}` ? "sm-2" : "sm-1");
    await h.members(["c2s-1", "sm-1", "sm-2"]);
    // No CLOSE and no unavailable presence: the c2s rebuilds alice on sm-2.
    expect(alice.frames()).toEqual([]);
    expect(bob.frames()).toEqual([]);
    await alice.send(`<message to='bob@${DOMAIN}' type='chat'><body>late</body></message>`);
    const [passed] = h.port.take((f) => f.to === SM_ADDRESS);
    expect(passed).toMatchObject({ op: SessionOp.Stanza, key: `alice@${DOMAIN}`, meta: { sid: alice.sid, rerouted: true } });
  });

  it("rebuilds a session a c2s holds, with its presence and roster interest, without broadcasting", async () => {
    h = await Harness.create(["alice", "bob"]);
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    const presence = `<presence from='alice@${DOMAIN}/a'><priority>5</priority></presence>`;
    await h.route("c2s-2", `alice@${DOMAIN}`, encodeSessionPayload(SessionOp.Rebuild, { sid: "r1", jid: `alice@${DOMAIN}/a`, ip: "127.0.0.1", secure: true, interested: true }, presence));
    expect(h.port.take((f) => f.to === "c2s-2")).toMatchObject([{ op: SessionOp.Started, meta: { sid: "r1", jid: `alice@${DOMAIN}/a` } }]);
    expect(bob.frames()).toEqual([]);
    // A message to alice's bare JID reaches the rebuilt, available session.
    await bob.send(`<message to='alice@${DOMAIN}' type='chat' id='m'><body>hi</body></message>`);
    expect(h.port.take((f) => f.to === "c2s-2" && f.op === SessionOp.Deliver)).toMatchObject([{ meta: { sid: "r1" } }]);
    // The same rebuild again is only acknowledged.
    await h.route("c2s-2", `alice@${DOMAIN}`, encodeSessionPayload(SessionOp.Rebuild, { sid: "r1", jid: `alice@${DOMAIN}/a`, ip: "127.0.0.1", secure: true, interested: true }, presence));
    expect(h.port.take((f) => f.to === "c2s-2")).toMatchObject([{ op: SessionOp.Started }]);
  });

  it("treats an undeliverable DELIVER as the end of that session and keeps the stanza", async () => {
    h = await Harness.create(["alice", "bob"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`, "c2s-1");
    const bob = await h.connect(`bob@${DOMAIN}/b`, "c2s-9");
    await bob.online();
    await alice.send(`<message to='bob@${DOMAIN}' type='chat' id='m1'><body>hello</body></message>`);
    const [deliver] = h.port.take((f) => f.to === "c2s-9" && f.op === SessionOp.Deliver);
    expect(deliver).toBeDefined();

    h.sm.onUndeliverable("c2s-9", deliver!.key, encodeSessionPayload(SessionOp.Deliver, { sid: bob.sid }, deliver!.xml));
    await h.sm.idle();
    const stored = await h.store.loadOffline(`bob@${DOMAIN}`);
    expect(stored).toHaveLength(1);
    expect(parse(stored[0]!.xml).attrs.id).toBe("m1");
    // bob's session is gone: a further stanza from it is refused.
    await bob.send("<presence/>");
    expect(bob.frames()).toMatchObject([{ op: SessionOp.Close, meta: { condition: "internal-server-error" } }]);
  });

  it("forwards stanzas for users owned by another sm, and processes FORWARDs for its own", async () => {
    h = await Harness.create(["alice", "bob"]);
    h.port.owner = (key) => (key === `bob@${DOMAIN}` ? "sm-2" : "sm-1");
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await alice.online();
    const sent = `<message to="bob@${DOMAIN}" type="chat" from="${alice.jid}"><body>bytes as sent</body></message>`;
    await alice.sendRaw(sent);
    const [forward] = h.port.take((f) => f.op === SessionOp.Forward);
    expect(forward).toMatchObject({ to: SM_ADDRESS, key: `bob@${DOMAIN}` });
    expect(forward!.xml.toString()).toBe(sent);

    // XEP-0334 no-store: not archived, so delivered as the bytes forwarded (mod-mam gives archived ones a stanza-id).
    const incoming = `<message from="bob@${DOMAIN}/b" to="${alice.jid}" type="chat"><body>back</body><no-store xmlns="urn:xmpp:hints"/></message>`;
    await h.route("sm-2", `alice@${DOMAIN}`, encodeSessionPayload(SessionOp.Forward, {}, incoming));
    const frames = alice.frames();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.op).toBe(SessionOp.Deliver);
    expect(frames[0]!.xml.toString()).toBe(incoming);
  });

  it("deletes an account in its turn: sessions end and contacts see them go, then every subscription and request is cancelled", async () => {
    h = await Harness.create(["alice", "bob", "carol", "dave"]);
    await h.mutual("alice", "bob");
    // alice asked carol for her presence; dave asked alice for hers.
    await h.rosterItem("alice", "carol", { askOut: true });
    await h.rosterItem("carol", "alice", { pendingIn: true, visible: false });
    await h.rosterItem("alice", "dave", { pendingIn: true, visible: false });
    await h.rosterItem("dave", "alice", { askOut: true });
    const [bob, carol, dave] = await Promise.all([h.connect(`bob@${DOMAIN}/b`), h.connect(`carol@${DOMAIN}/c`), h.connect(`dave@${DOMAIN}/d`)]);
    for (const c of [bob, carol, dave]) await c.online();
    const phone = await h.connect(`alice@${DOMAIN}/phone`);
    const desk = await h.connect(`alice@${DOMAIN}/desk`);
    await phone.online();
    await desk.online();
    for (const c of [bob, carol, dave, phone, desk]) c.received();

    await h.sm.deleteUser(`alice@${DOMAIN}`, true);
    await h.sm.idle();
    // (desk, ended second, saw phone go before its own end.)
    for (const s of [phone, desk]) expect(s.frames().at(-1)).toMatchObject({ op: SessionOp.Close, meta: { condition: "not-authorized" } });
    const seen = (c: typeof bob) => c.received().map((p) => [p.attrs.type, p.attrs.from]);
    expect(seen(bob)).toEqual([
      ["unavailable", `alice@${DOMAIN}/phone`],
      ["unavailable", `alice@${DOMAIN}/desk`],
      ["unsubscribe", `alice@${DOMAIN}`],
      ["unsubscribed", `alice@${DOMAIN}`],
    ]);
    expect(seen(carol)).toEqual([["unsubscribe", `alice@${DOMAIN}`]]);
    expect(seen(dave)).toEqual([["unsubscribed", `alice@${DOMAIN}`]]);
    expect(await h.store.getRosterItem(`bob@${DOMAIN}`, `alice@${DOMAIN}`)).toMatchObject({ subscription: "none", askOut: false, pendingIn: false });
    expect(await h.store.getRosterItem(`dave@${DOMAIN}`, `alice@${DOMAIN}`)).toMatchObject({ subscription: "none", askOut: false });
    expect(await h.store.accountExists(`alice@${DOMAIN}`)).toBe(false);
    expect(await h.store.getRoster(`alice@${DOMAIN}`)).toEqual([]);
    expect(await h.startFrame(`alice@${DOMAIN}/phone`)).toMatchObject({ op: SessionOp.StartFailed, meta: { condition: "not-authorized" } });
  });

  it("only ends the sessions of an account it is not asked to remove (another sm owns it)", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await bob.online();
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await alice.online();
    bob.received();
    await h.sm.deleteUser(`alice@${DOMAIN}`, false);
    await h.sm.idle();
    expect(alice.frames()).toMatchObject([{ op: SessionOp.Close, meta: { condition: "not-authorized" } }]);
    expect(bob.received().map((p) => [p.attrs.type, p.attrs.from])).toEqual([["unavailable", `alice@${DOMAIN}/a`]]);
    expect(await h.store.accountExists(`alice@${DOMAIN}`)).toBe(true);
  });

  it("closes every session on shutdown", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await h.sm.close();
    expect(alice.frames()).toMatchObject([{ op: SessionOp.Close, meta: { condition: "system-shutdown" } }]);
  });
});
