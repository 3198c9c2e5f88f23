// XEP-0198 unacknowledged queue of one session: counted in stanzas and in
// bytes, and the offline messages its acknowledgements cover.
import { describe, expect, it } from "vitest";
import { AckState } from "../c2s/stream-management.js";

describe("the XEP-0198 queue", () => {
  it("counts the bytes it holds, and gives them back as the client acknowledges", () => {
    const ack = AckState.create("c2s-1", "s1", true);
    ack.sent("<message id='1'/>", 17);
    ack.sent("<message id='2'>é</message>", 28);
    ack.sent("<presence/>", 11);
    expect(ack.bytes).toBe(56);
    expect(ack.acked(2)).toBe(true);
    expect(ack.queue.map((u) => u.xml)).toEqual(["<presence/>"]);
    expect(ack.bytes).toBe(11);
    // More than was sent, or fewer than already acknowledged: refused, nothing changes.
    expect(ack.acked(4)).toBe(false);
    expect(ack.acked(1)).toBe(false);
    expect(ack.bytes).toBe(11);
    expect(ack.acked(3)).toBe(true);
    expect(ack.bytes).toBe(0);
  });

  it("names the newest offline message each acknowledgement covered, once", () => {
    const ack = AckState.create("c2s-1", "s1", false);
    ack.sent("<message id='live'/>", 20);
    ack.sent("<message id='o1'/>", 18, 41);
    ack.sent("<message id='o2'/>", 18, 42);
    ack.sent("<message id='live2'/>", 21);
    ack.sent("<message id='o3'/>", 18, 57);
    expect(ack.acked(1)).toBe(true);
    expect(ack.takeConfirmed()).toBe(0);
    expect(ack.acked(4)).toBe(true);
    expect(ack.takeConfirmed()).toBe(42);
    expect(ack.takeConfirmed()).toBe(0);
    expect(ack.acked(5)).toBe(true);
    expect(ack.takeConfirmed()).toBe(57);
  });

  it("takes back another front end's queue without counting it as sent again", () => {
    const ack = new AckState("c2s-1~s1~x", true);
    ack.outbound = 7;
    ack.requeue("<message id='6'/>", 17, 0, 12);
    ack.requeue("<message id='7'/>", 17, 99, 0);
    expect(ack.bytes).toBe(34);
    expect(ack.acked(7)).toBe(true);
    expect(ack.takeConfirmed()).toBe(99);
    // The highest DELIVER number the acknowledgement covered, for the sm (protocol §2.6).
    expect(ack.ackedN).toBe(12);
    expect(ack.outbound).toBe(7);
  });
});
