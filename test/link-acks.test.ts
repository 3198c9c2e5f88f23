// TAKEN, DELIVERED and CLIENT_ACKED's acks in both forms (docs/protocol.md
// §2.5, §2.6): the table every version reads, and the flat form for a
// receiver whose info has flatAcks.
import { afterEach, describe, expect, it } from "vitest";
import { flatAckReaders, type Member } from "../lib/link/member.js";
import {
  SessionOp,
  addDeliveredNum,
  clientAckedPayload,
  decodeSessionPayload,
  deliveredPayload,
  eachClientAck,
  eachDelivered,
  eachTaken,
  encodeSessionPayload,
  takenPayload,
  type SessionMessage,
} from "../lib/link/session-payload.js";
import type { C2sContext } from "../c2s/c2s-context.js";
import type { Store } from "../xdb-sql/store.js";
import { frontContext } from "./harness/c2s-front.js";

const meta = (payload: Buffer): unknown => decodeSessionPayload(payload).meta;
const takenOf = (m: SessionMessage) => {
  const seen: [string, number][] = [];
  if (m.op === SessionOp.Taken) eachTaken(m.meta, (sid, seq) => seen.push([sid, seq]));
  return seen;
};
const deliveredOf = (m: SessionMessage) => {
  const seen: [string, string][] = [];
  if (m.op === SessionOp.Delivered) eachDelivered(m.meta, (sid, origin) => seen.push([sid, origin]));
  return seen;
};

describe("link: TAKEN and DELIVERED", () => {
  it("writes the flat form only when asked, and the table otherwise, the last seq of a session winning", () => {
    const seqs = ["s1", 1, "s2", 4, "s1", 2];
    expect(meta(takenPayload(seqs, [], true))).toEqual({ seqs });
    expect(meta(takenPayload(seqs, ["gone"], false))).toEqual({ taken: { s1: 2, s2: 4 }, unknown: ["gone"] });
    const pairs = ["s1", "c2s-1/a/1.0", "s2", "c2s-1/a/2.0", "s1", "c2s-1/b/1.0"];
    expect(meta(deliveredPayload(pairs, true))).toEqual({ delivered: pairs });
    expect(meta(deliveredPayload(pairs, false))).toEqual({ got: { s1: ["c2s-1/a/1.0", "c2s-1/b/1.0"], s2: ["c2s-1/a/2.0"] } });
  });

  it("reads either form, in order", () => {
    expect(takenOf(decodeSessionPayload(takenPayload(["s1", 1, "s1", 3], [], true)))).toEqual([["s1", 1], ["s1", 3]]);
    expect(takenOf(decodeSessionPayload(encodeSessionPayload(SessionOp.Taken, { taken: { s1: 3, s2: 1 } })))).toEqual([["s1", 3], ["s2", 1]]);
    expect(deliveredOf(decodeSessionPayload(deliveredPayload(["s1", "o1", "s2", "o2"], true)))).toEqual([["s1", "o1"], ["s2", "o2"]]);
    expect(deliveredOf(decodeSessionPayload(encodeSessionPayload(SessionOp.Delivered, { got: { s1: ["o1", "o2"] } })))).toEqual([["s1", "o1"], ["s1", "o2"]]);
  });

  it("gathers a DELIVERED's numbers into ranges, one growing while they come in order", () => {
    const ranges: number[] = [];
    for (const num of [7, 8, 9, 12, 11, 12, 13]) addDeliveredNum(ranges, num);
    expect(ranges).toEqual([7, 9, 12, 12, 11, 13]);
    expect(meta(encodeSessionPayload(SessionOp.Delivered, { nums: ranges }))).toEqual({ nums: ranges });
  });

  it("writes and reads CLIENT_ACKED's acks in either form", () => {
    const acks = ["s1", 3, 1, "s2", 7, 0];
    expect(meta(clientAckedPayload(acks, true))).toEqual({ acks });
    expect(meta(clientAckedPayload(acks, false))).toEqual({ acked: { s1: [3, 1], s2: [7, 0] } });
    for (const flat of [true, false]) {
      const m = decodeSessionPayload(clientAckedPayload(acks, flat));
      const seen: [string, number, number][] = [];
      if (m.op === SessionOp.ClientAcked) eachClientAck(m.meta, (sid, h, n) => seen.push([sid, h, n]));
      expect(seen).toEqual([["s1", 3, 1], ["s2", 7, 0]]);
    }
  });

  it("refuses a frame with neither form, or a flat list that does not pair up", () => {
    const bad = (op: SessionOp, m: object) => () => decodeSessionPayload(encodeSessionPayload(op, m as never));
    expect(bad(SessionOp.Taken, { unknown: ["s1"] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.Taken, { seqs: ["s1", 1, "s2"] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.Taken, { seqs: ["s1", "1"] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.Delivered, {})).toThrow(/wrong shape/);
    expect(bad(SessionOp.Delivered, { delivered: ["s1", 2] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.Delivered, { nums: [1, 2, 3] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.Delivered, { nums: [1, -2] })).toThrow(/wrong shape/);
    expect(bad(SessionOp.ClientAcked, { acks: ["s1", 3] })).toThrow(/wrong shape/);
  });

  it("knows its flat readers by their info", () => {
    const members: Member[] = [
      { name: "c2s-1", role: "c2s", info: { flatAcks: true } },
      { name: "c2s-2", role: "c2s", info: {} },
      { name: "sm-1", role: "sm", info: { started: 1, flatAcks: true } },
    ];
    expect([...flatAckReaders(members)]).toEqual(["c2s-1", "sm-1"]);
  });
});

describe("c2s: the form of CLIENT_ACKED", () => {
  let front: { ctx: C2sContext; store: Store } | undefined;
  afterEach(async () => {
    await front?.ctx.shutdown(0);
    await front?.store.close();
  });

  it("is flat to an sm that announces flatAcks, and the table to one that does not", async () => {
    const { ctx, link, store } = await frontContext();
    front = { ctx, store };
    const sent = async () => (await link.next(SessionOp.ClientAcked)).meta;
    link.emit("members", [{ name: "sm-1", role: "sm", info: { started: 1 } }]);
    ctx.clientAcked("u1@localhost", "s1", 2, 1);
    expect(await sent()).toEqual({ acked: { s1: [2, 1] } });
    link.emit("members", [{ name: "sm-1", role: "sm", info: { started: 1, flatAcks: true } }]);
    ctx.clientAcked("u1@localhost", "s1", 3, 2);
    ctx.clientAcked("u1@localhost", "s2", 1, 0);
    expect(await sent()).toEqual({ acks: ["s1", 3, 2, "s2", 1, 0] });
  });
});
