// router/awaited-members.ts: after a takeover, the old table's members are waited for (protocol §1.9).
import { describe, expect, it } from "vitest";
import { AWAIT_MS, AwaitedMembers } from "../router/awaited-members.js";
import type { Member } from "../lib/link/member.js";

const sm1: Member = { name: "sm-1", role: "sm", info: { started: 1 } };
const c2s1: Member = { name: "c2s-1", role: "c2s", info: { started: 2 } };
const component: Member = { name: "muc.example.org", role: "component", info: {} };
const frame = (to: string, n: number) => ({ from: "c2s-2", to, key: "alice@x", raw: Buffer.alloc(n) });

describe("AwaitedMembers", () => {
  it("awaits the remembered c2s and sm not linked yet, holds their frames, and gives them back in order on arrival", () => {
    const awaited = new AwaitedMembers();
    awaited.remember([sm1, c2s1, component]);
    awaited.begin(new Set(["c2s-1"]), 1_000);
    expect(awaited.members).toEqual([sm1]);
    expect(awaited.hold("sm-1", frame("sm", 10))).toBe(true);
    expect(awaited.hold("sm-1", frame("sm-1", 20))).toBe(true);
    expect(awaited.hold("c2s-1", frame("c2s-1", 5))).toBe(false); // linked, so not awaited
    expect(awaited.take("sm-1").map((f) => f.raw.length)).toEqual([10, 20]);
    expect(awaited.has("sm-1")).toBe(false);
    expect(awaited.expire(1_000 + AWAIT_MS)).toEqual([]);
  });

  it("gives up on members that do not come within AWAIT_MS, returning what was held", () => {
    const awaited = new AwaitedMembers();
    awaited.remember([sm1, c2s1]);
    awaited.begin(new Set(), 0);
    awaited.hold("c2s-1", frame("c2s-1", 7));
    expect(awaited.expire(AWAIT_MS - 1)).toEqual([]);
    const gone = awaited.expire(AWAIT_MS);
    expect(gone.map((g) => [g.name, g.held.length])).toEqual([["sm-1", 0], ["c2s-1", 1]]);
    expect(awaited.members).toEqual([]);
  });

  it("refuses to hold more than 64 MiB in all", () => {
    const awaited = new AwaitedMembers();
    awaited.remember([sm1]);
    awaited.begin(new Set(), 0);
    expect(awaited.hold("sm-1", frame("sm", 40 * 1024 * 1024))).toBe(true);
    expect(awaited.hold("sm-1", frame("sm", 30 * 1024 * 1024))).toBe(false);
    expect(awaited.clear()[0]!.held).toHaveLength(1);
  });
});
