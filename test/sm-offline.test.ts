// XEP-0160 offline storage with quotas, and its paced delivery (protocol
// §2.4): a batch at a time, each message deleted only once the c2s reports
// it delivered, the rest kept for the next session.
import { parse } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload, type DeliverMeta } from "../lib/link/session-payload.js";
import { DOMAIN, Harness, conditionOf, type Client, type Frame } from "./sm-harness.js";

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

  /** A harness where bob has `count` messages stored (quota far above), m1 to mN; their ids. */
  async function backlog(count: number): Promise<string[]> {
    h = await Harness.create(["alice", "bob"], { limits: { offlineMessages: 1000, offlineBytes: 1 << 30 } });
    const alice = await sender();
    const ids = Array.from({ length: count }, (_, i) => `m${i + 1}`);
    for (const id of ids) await alice.send(chat(id));
    return ids;
  }

  /** Takes batch after batch, reporting each delivered; the bodies, in order, batch by batch. */
  async function drain(client: Client): Promise<string[][]> {
    const batches: string[][] = [];
    for (let batch = offline(client.frames()); batch.length > 0; batch = offline(client.frames())) {
      batches.push(batch.map((m) => m.body));
      await client.written(batch.at(-1)!.confirm);
    }
    return batches;
  }

  it("bounces a message over the count quota to its sender with service-unavailable", async () => {
    h = await Harness.create(["alice", "bob"], { limits: { offlineMessages: 3, offlineBytes: 1 << 20 } });
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
    h = await Harness.create(["alice", "bob"], { limits: { offlineMessages: 100, offlineBytes: 2500 } });
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
    const ids = await backlog(250);
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
    h = await Harness.create(["alice", "bob"], { limits: { offlineMessages: 100, offlineBytes: 1 << 30 } });
    const alice = await sender();
    await alice.send(chat("a", "x".repeat(200_000)));
    await alice.send(chat("b", "x".repeat(200_000)));
    await alice.send(chat("c", "x".repeat(200_000)));
    await alice.send(chat("huge", "x".repeat(600_000)));
    await alice.send(chat("d"));
    const bob = await h.connect(`${BOB}/b`);
    await bob.send("<presence/>");
    const batches = (await drain(bob)).map((batch) => batch.map((body) => body.slice(0, 1) + body.length));
    expect(batches).toEqual([["x200000", "x200000"], ["x200000"], ["x600000"], ["d1"]]);
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("keeps what a session did not confirm for the user's next session, in order", async () => {
    const ids = await backlog(150);
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const first = offline(phone.frames());
    await phone.written(first[29]!.confirm);
    await phone.end();
    expect(await h.store.countOffline(BOB)).toBe(120);

    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    expect((await drain(laptop)).flat()).toEqual(ids.slice(30));
    expect(await h.store.countOffline(BOB)).toBe(0);
  });

  it("hands the rest of a backlog to another available resource when the one taking it ends", async () => {
    const ids = await backlog(120);
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    // One resource at a time takes the backlog.
    expect(offline(phone.frames())).toHaveLength(100);
    expect(offline(laptop.frames())).toEqual([]);
    await phone.end();
    const rest = offline(laptop.frames());
    expect(rest.map((m) => m.body)).toEqual(ids.slice(0, 100));
  });

  it("goes on with another resource when the one taking the backlog becomes unavailable", async () => {
    const ids = await backlog(150);
    const phone = await h.connect(`${BOB}/phone`);
    await phone.send("<presence/>");
    const laptop = await h.connect(`${BOB}/laptop`);
    await laptop.send("<presence/>");
    const first = offline(phone.frames());
    await phone.send("<presence type='unavailable'/>");
    await phone.written(first.at(-1)!.confirm);
    expect(offline(phone.frames())).toEqual([]);
    expect(offline(laptop.frames()).map((m) => m.body)).toEqual(ids.slice(100));
  });

  it("resumes the backlog of a session rebuilt on this sm, and never routes an undeliverable stored message again", async () => {
    await backlog(3);
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
});
