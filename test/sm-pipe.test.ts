// c2s/sm-pipe.ts: what a session keeps of its traffic with the sm (protocol §2.5).
import { describe, expect, it } from "vitest";
import { SmPipe } from "../c2s/sm-pipe.js";

describe("SmPipe", () => {
  it("numbers stanzas, keeps them until taken, and reports the XEP-0198 h of what was taken", () => {
    const pipe = new SmPipe();
    expect(pipe.safeH(0)).toBe(0);
    const a = pipe.add("<message id='a'/>", 17, 1, "bob@x", 0);
    const b = pipe.add("<message id='b'/>", 17, 2, "bob@x", 0);
    pipe.add("<message id='c'/>", 17, 4, "carol@x", 0); // the client's third stanza was answered by the c2s itself
    expect([a.seq, b.seq]).toEqual([1, 2]);
    expect(pipe.bytes).toBe(51);
    expect(pipe.safeH(4)).toBe(0);
    expect(pipe.taken(0, 1)).toBe(false);
    expect(pipe.taken(2, 1)).toBe(true);
    expect(pipe.pending.map((p) => p.seq)).toEqual([3]);
    expect(pipe.takenSeq).toBe(2);
    expect(pipe.safeH(4)).toBe(3);
    expect(pipe.taken(2, 2)).toBe(false); // a copy of an older TAKEN
    expect(pipe.taken(3, 2)).toBe(true);
    expect(pipe.pending).toEqual([]);
    expect(pipe.bytes).toBe(0);
    expect(pipe.safeH(4)).toBe(4);
    expect(pipe.takenSeq).toBe(3);
  });

  it("recognises an identity delivered lately, forgets it after two minutes, and keeps at most 512", () => {
    const pipe = new SmPipe();
    expect(pipe.seen("c2s-1/s/1.0", 0)).toBe(false);
    expect(pipe.seen("c2s-1/s/1.0", 1_000)).toBe(true);
    expect(pipe.seen("c2s-1/s/1.0", 121_000)).toBe(false); // forgotten, and remembered again now
    expect(pipe.seen("c2s-1/s/1.0", 122_000)).toBe(true);
    for (let i = 0; i < 600; i++) pipe.seen(`id${i}`, 130_000);
    expect(pipe.recentOrigins(130_000)).toHaveLength(512);
    expect(pipe.seen("id599", 130_000)).toBe(true);
    expect(pipe.seen("id0", 130_000)).toBe(false);
  });

  it("keeps a few identities oldest first, forgets each on its own time, and keeps them all when they outgrow the array", () => {
    const pipe = new SmPipe();
    pipe.seen("a", 0);
    pipe.seen("b", 60_000);
    pipe.seen("c", 61_000);
    expect(pipe.recentOrigins(61_000)).toEqual(["a", "b", "c"]);
    expect(pipe.seen("a", 119_000)).toBe(true);
    // a is forgotten at 120 s and remembered again as the newest; b and c are still known.
    expect(pipe.seen("a", 120_000)).toBe(false);
    expect(pipe.recentOrigins(120_000)).toEqual(["b", "c", "a"]);
    expect(pipe.seen("b", 150_000)).toBe(true);
    expect(pipe.recentOrigins(180_000)).toEqual(["c", "a"]);
    // Past the array's room: the same identities, in the same order, and each still recognised.
    const ids = Array.from({ length: 12 }, (_, i) => `id${i}`);
    for (const id of ids) pipe.seen(id, 181_000);
    expect(pipe.recentOrigins(181_000)).toEqual(["a", ...ids]);
    for (const id of ids) expect(pipe.seen(id, 182_000)).toBe(true);
    expect(pipe.seen("c", 182_000)).toBe(false);
  });

  it("hands its state over: pending stanzas under their seqs, and the identities", () => {
    const old = new SmPipe();
    old.add("<message/>", 10, 1, "bob@x", 0);
    old.seen("o1", 0);
    const next = new SmPipe();
    next.seq = old.seq;
    for (const p of old.pending) next.requeue(p, 5);
    next.remember(old.recentOrigins(5), 5);
    expect(next.pending.map((p) => p.seq)).toEqual([1]);
    expect(next.add("<message/>", 10, 2, "bob@x", 6).seq).toBe(2);
    expect(next.seen("o1", 6)).toBe(true);
  });
});
