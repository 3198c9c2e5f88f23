// The sm's log of a resumable session (protocol §2.6): from the client's
// 'h' alone it tells what the client got and what is sent again, whatever
// the front end wrote on its own or dropped as a copy in between.
import { describe, expect, it } from "vitest";
import { ResumeLog } from "../sm/resumption.js";

const fresh = (outbound = 0, lastN = 0) => new ResumeLog({ id: "c2s-1~s1~x", max: 300, stanzas: 1000, bytes: 1 << 20, inbound: 0, outbound, lastN });
const add = (log: ResumeLog, ...names: string[]) => names.map((name) => log.add(Buffer.from(`<message id='${name}'/>`), 0, name));
const ids = (entries: { origin: string | undefined }[]) => entries.map((e) => e.origin);

describe("a resumable session's log in the sm", () => {
  it("numbers deliveries on from what the front end last had, and keeps them until acknowledged", () => {
    const log = fresh(7, 40);
    expect(add(log, "a", "b", "c")).toEqual([41, 42, 43]);
    // The client acknowledged 8 stanzas in all, the 8th being DELIVER 41.
    log.acked(8, 41);
    expect(ids(log.resumeFrom(8)!.missing)).toEqual(["b", "c"]);
    expect(ids(log.resumeFrom(10)!.got)).toEqual(["b", "c"]);
    expect(log.resumeFrom(10)!.missing).toEqual([]);
  });

  it("counts the front end's own stanzas at their positions, not as deliveries", () => {
    const log = fresh();
    add(log, "a", "b");
    // Written: a at 1, the front end's own at 2, b at 3.
    log.local(2);
    expect(ids(log.resumeFrom(2)!.got)).toEqual(["a"]);
    expect(ids(log.resumeFrom(2)!.missing)).toEqual(["b"]);
    expect(ids(log.resumeFrom(3)!.got)).toEqual(["a", "b"]);
    // Acknowledged past it: forgotten.
    log.acked(2, 1);
    expect(ids(log.resumeFrom(2)!.missing)).toEqual(["b"]);
  });

  it("forgets a delivery the front end dropped as a copy", () => {
    const log = fresh();
    const [, n] = add(log, "a", "a-again", "b");
    log.skipped(n!);
    expect(ids(log.resumeFrom(1)!.missing)).toEqual(["b"]);
  });

  it("refuses an h below the last acknowledgement or beyond what was sent", () => {
    const log = fresh();
    add(log, "a", "b");
    log.acked(1, 1);
    expect(log.resumeFrom(0)).toBeNull();
    expect(log.resumeFrom(3)).toBeNull();
    expect(log.resumeFrom(Number.NaN)).toBeNull();
  });

  it("after a resumption, counts on from the client's h with what was sent again", () => {
    const log = fresh();
    add(log, "a", "b", "c");
    const plan = log.resumeFrom(1)!;
    log.resumed(1, plan.missing);
    add(log, "d");
    expect(ids(log.resumeFrom(3)!.got)).toEqual(["b", "c"]);
    expect(ids(log.resumeFrom(3)!.missing)).toEqual(["d"]);
  });

  it("is full beyond what the client may leave unacknowledged", () => {
    const log = new ResumeLog({ id: "x", max: 300, stanzas: 2, bytes: 1 << 20, inbound: 0, outbound: 0, lastN: 0 });
    add(log, "a", "b");
    expect(log.full).toBe(false);
    add(log, "c");
    expect(log.full).toBe(true);
    expect(ids(log.takeAll())).toEqual(["a", "b", "c"]);
    expect(log.full).toBe(false);
  });
});
