// XEP-0160 offline storage with quotas, and its paced delivery (protocol
// §2.4): a batch at a time, each message deleted only once the c2s reports
// it delivered, the rest kept for the next session.
import { parse } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload, type DeliverMeta } from "../lib/link/session-payload.js";
import { DEFAULT_LIMITS, DOMAIN, Harness, conditionOf, type Client, type Frame } from "./sm-harness.js";

const BOB = `bob@${DOMAIN}`;
const chat = (id: string, body = id) => `<message to='${BOB}' type='chat' id='${id}'><body>${body}</body></message>`;

/** The offline messages among frames: body, store id, and whether it ends its batch. */
function offline(frames: Frame[]): { body: string; confirm: number; last: boolean }[] {
  return frames
    .filter((f) => f.op === SessionOp.Deliver && (f.meta as DeliverMeta).confirm !== undefined)
    .map((f) => {
      const meta = f.meta as DeliverMeta;
      return { body: parse(f.xml.toString()).getChildText("body")!, confirm: meta.confirm!, last: meta.last === true };
    });
}

describe("offline storage", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function sender(): Promise<Client> {
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await alice.online();
    return alice;
  }

  it("bounces a message over the count quota to its sender with service-unavailable", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 3, bytes: 1 << 20 } } });
    const alice = await sender();
    for (const id of ["m1", "m2", "m3"]) await alice.send(chat(id));
    expect(alice.received()).toEqual([]);
    await alice.send(chat("m4"));
    const [error, ...rest] = alice.received();
    expect(rest).toEqual([]);
    expect(error!.attrs).toMatchObject({ type: "error", id: "m4", from: BOB, to: alice.jid });
    expect(conditionOf(error!)).toBe("service-unavailable");
    expect(error!.getChild("error")!.attrs.type).toBe("cancel");
    expect(error!.getChild("error")!.getChildText("text")).toMatch(/offline storage is full/);
    expect(await h.store.countOffline(BOB)).toBe(3);
  });

  it("bounces a message that would take the user over the byte quota, and stores a smaller one", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 100, bytes: 2500 } } });
    const alice = await sender();
    await alice.send(chat("big1", "x".repeat(900)));
    await alice.send(chat("big2", "x".repeat(900)));
    expect(alice.received()).toEqual([]);
    await alice.send(chat("big3", "x".repeat(900)));
    const [error] = alice.received();
    expect(error!.attrs.id).toBe("big3");
    expect(conditionOf(error!)).toBe("service-unavailable");
    await alice.send(chat("small"));
    expect(alice.received()).toEqual([]);
    expect(await h.store.countOffline(BOB)).toBe(3);
  });

  it("delivers a backlog a batch at a time, deleting each message once reported delivered", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 1000, bytes: 1 << 30 } } });
    const alice = await sender();
    const ids = Array.from({ length: 250 }, (_, i) => `m${i + 1}`);
    for (const id of ids) await alice.send(chat(id));
    const bob = await h.connect(`${BOB}/b`);
    await bob.send("<presence/>");

    const first = offline(bob.frames());
    expect(first.map((m) => m.body)).toEqual(ids.slice(0, 100));
    expect(first.map((m) => m.last)).toEqual([...Array(99).fill(false), true]);
    // Nothing more until the c2s reports; a partial report deletes that much and sends nothing new.
    await bob.written(first[39]!.confirm);
    expect(offline(bob.frames())).toEqual([]);
    expect(await h.store.countOffline(BOB)).toBe(210);
    await bob.written(first[99]!.confirm);
    const second = offline(bob.frames());
    expect(second.map((m) => m.body)).toEqual(ids.slice(100, 200));
    await bob.written(second.at(-1)!.confirm);
    const third = offline(bob.frames());
    expect(third.map((m) => m.body)).toEqual(ids.slice(200));
    expect(third.at(-1)!.last).toBe(true);
    await bob.written(third.at(-1)!.confirm);
    expect(offline(bob.frames())).toEqual([]);
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("bounds a batch by bytes, sending a message bigger than a batch alone", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 100, bytes: 1 << 30 } } });
    const alice = await sender();
    await alice.send(chat("a", "x".repeat(200_000)));
    await alice.send(chat("b", "x".repeat(200_000)));
    await alice.send(chat("c", "x".repeat(200_000)));
    await alice.send(chat("huge", "x".repeat(600_000)));
    await alice.send(chat("d"));
    const bob = await h.connect(`${BOB}/b`);
    await bob.send("<presence/>");
    const batches: string[][] = [];
    for (let batch = offline(bob.frames()); batch.length > 0; batch = offline(bob.frames())) {
      batches.push(batch.map((m) => m.body.slice(0, 1) + m.body.length));
      await bob.written(batch.at(-1)!.confirm);
    }
    expect(batches).toEqual([["x200000", "x200000"], ["x200000"], ["x600000"], ["d1"]]);
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("keeps what a session did not confirm for the user's next session, in order", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 1000, bytes: 1 << 30 } } });
    const alice = await sender();
    const ids = Array.from({ length: 150 }, (_, i) => `m${i + 1}`);
    for (const id of ids) await alice.send(chat(id));
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const first = offline(phone.frames());
    await phone.written(first[29]!.confirm);
    await phone.end();
    expect(await h.store.countOffline(BOB)).toBe(120);

    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    const got: string[] = [];
    for (let batch = offline(laptop.frames()); batch.length > 0; batch = offline(laptop.frames())) {
      got.push(...batch.map((m) => m.body));
      await laptop.written(batch.at(-1)!.confirm);
    }
    expect(got).toEqual(ids.slice(30));
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("hands the rest of a backlog to another available resource when the one taking it ends", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 1000, bytes: 1 << 30 } } });
    const alice = await sender();
    for (let i = 1; i <= 120; i++) await alice.send(chat(`m${i}`));
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    // One resource at a time takes the backlog.
    expect(offline(phone.frames())).toHaveLength(100);
    expect(offline(laptop.frames())).toEqual([]);
    await phone.end();
    const rest = offline(laptop.frames());
    expect(rest.map((m) => m.body)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i + 1}`));
  });

  it("goes on with another resource when the one taking the backlog becomes unavailable", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 1000, bytes: 1 << 30 } } });
    const alice = await sender();
    for (let i = 1; i <= 150; i++) await alice.send(chat(`m${i}`));
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    const first = offline(phone.frames());
    await phone.send("<presence type='unavailable'/>");
    await phone.written(first.at(-1)!.confirm);
    expect(offline(phone.frames())).toEqual([]);
    expect(offline(laptop.frames()).map((m) => m.body)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i + 101}`));
  });

  it("resumes the backlog of a session rebuilt on this sm, and never routes an undeliverable stored message again", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offline: { messages: 1000, bytes: 1 << 30 } } });
    const alice = await sender();
    for (let i = 1; i <= 3; i++) await alice.send(chat(`m${i}`));
    await h.route(
      "c2s-2",
      BOB,
      encodeSessionPayload(SessionOp.Rebuild, { sid: "r1", jid: `${BOB}/r`, ip: "127.0.0.1", secure: true, interested: false }, "<presence/>"),
    );
    const frames = h.port.take((f) => f.to === "c2s-2" && f.op === SessionOp.Deliver);
    expect(offline(frames).map((m) => m.body)).toEqual(["m1", "m2", "m3"]);
    // The front end is gone: the session ends, the messages stay stored, nothing is routed anew.
    for (const f of frames) h.sm.onUndeliverable("c2s-2", BOB, encodeSessionPayload(SessionOp.Deliver, f.meta as DeliverMeta, f.xml));
    await h.sm.idle();
    expect(await h.store.countOffline(BOB)).toBe(3);
    expect(h.port.take((f) => f.op === SessionOp.Deliver)).toEqual([]);
  });

  it("has the config's defaults without a config", () => {
    expect(DEFAULT_LIMITS.offline).toEqual({ messages: 100, bytes: 10 * 1024 * 1024 });
  });
});
