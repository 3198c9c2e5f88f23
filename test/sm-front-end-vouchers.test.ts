// The sm keeps each PLAIN session's voucher (START `plain`) and, while a front
// end is lost, sends its sessions' vouchers to the other front ends and to its
// next process, each once (protocol §2.8).
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp, encodeSessionPayload, type VouchersMeta } from "../lib/link/session-payload.js";
import type { Member } from "../lib/link/member.js";
import { DOMAIN, Harness, type Frame } from "./sm-harness.js";

const voucher = (n: number) => Buffer.alloc(32, n).toString("base64");

let h: Harness;
afterEach(async () => {
  await h.close();
});

/** The member table: sm-1 and each front end as "name@started". */
function members(...c2s: string[]): Member[] {
  return [{ name: "sm-1", role: "sm", info: {} }, ...c2s.map((n): Member => ({ name: n.split("@")[0]!, role: "c2s", info: { started: Number(n.split("@")[1]) } }))];
}

async function start(c2s: string, sid: string, jid: string, plain?: string): Promise<void> {
  await h.route(c2s, jid.split("/")[0]!, encodeSessionPayload(SessionOp.Start, { sid, jid, ip: "127.0.0.1", secure: true, ...(plain && { plain }) }));
}

/** The VOUCHERS frames sent since the last call, by the front end they went to. */
function vouchers(): Record<string, VouchersMeta[]> {
  const out: Record<string, VouchersMeta[]> = {};
  for (const f of h.port.take((f: Frame) => f.op === SessionOp.Vouchers)) {
    if (f.op === SessionOp.Vouchers) (out[f.to] ??= []).push(f.meta);
  }
  return out;
}

describe("a lost front end's PLAIN vouchers", () => {
  it("go to every other front end when it leaves the table, and to its next process, each once", async () => {
    h = await Harness.create(["a", "b", "c", "d"], { c2sGraceMs: 60_000 });
    h.sm.onMembers(members("c2s-1@1", "c2s-2@1", "c2s-3@1"));
    await start("c2s-1", "s1", `a@${DOMAIN}/one`, voucher(1));
    await start("c2s-1", "s2", `a@${DOMAIN}/two`, voucher(1));
    await start("c2s-1", "s3", `b@${DOMAIN}/r`, voucher(2));
    await start("c2s-1", "s4", `c@${DOMAIN}/r`);
    await start("c2s-2", "s5", `d@${DOMAIN}/r`, voucher(4));
    // A voucher of another length is none.
    await start("c2s-1", "s6", `d@${DOMAIN}/x`, "AAAA");
    h.port.take();

    h.sm.onMembers(members("c2s-2@1", "c2s-3@1"));
    await h.sm.idle();
    const sent = { from: "c2s-1", plain: { [`a@${DOMAIN}`]: voucher(1), [`b@${DOMAIN}`]: voucher(2) } };
    expect(vouchers()).toEqual({ "c2s-2": [sent], "c2s-3": [sent] });
    // Another table while it is still missing sends nothing again.
    h.sm.onMembers(members("c2s-2@1", "c2s-3@1"));
    expect(vouchers()).toEqual({});
    // Its next process links: it alone is sent them; then, in the next turn, the old process's sessions end.
    h.sm.onMembers(members("c2s-1@2", "c2s-2@1", "c2s-3@1"));
    expect(vouchers()).toEqual({ "c2s-1": [sent] });
    expect(h.port.frames).toEqual([]);
    await new Promise((r) => setImmediate(r));
    await h.sm.idle();
    h.port.take();
    // They ended with the old process: losing the new one sends nothing.
    h.sm.onMembers(members("c2s-2@1", "c2s-3@1"));
    await h.sm.idle();
    expect(vouchers()).toEqual({});
  });

  it("go to none once it is back as the same process, and again if it is lost again", async () => {
    h = await Harness.create(["a"], { c2sGraceMs: 60_000 });
    h.sm.onMembers(members("c2s-1@1", "c2s-2@1"));
    await start("c2s-1", "s1", `a@${DOMAIN}/r`, voucher(1));
    h.port.take();
    h.sm.onMembers(members("c2s-2@1"));
    expect(Object.keys(vouchers())).toEqual(["c2s-2"]);
    // A router's restart, say: the same process is back with its sessions.
    h.sm.onMembers(members("c2s-1@1", "c2s-2@1"));
    await h.sm.idle();
    expect(vouchers()).toEqual({});
    h.sm.onMembers(members("c2s-2@1"));
    expect(Object.keys(vouchers())).toEqual(["c2s-2"]);
  });

  it("are split over frames whose meta stays within its 16-bit length", async () => {
    // Long localparts (RFC 7622 allows 1023 bytes), so that a few dozen users fill several frames.
    const users = Array.from({ length: 60 }, (_, i) => `${"u".repeat(1000)}${i}`);
    h = await Harness.create(users, { c2sGraceMs: 60_000 });
    h.sm.onMembers(members("c2s-1@1", "c2s-2@1"));
    for (const [i, u] of users.entries()) await start("c2s-1", `s${i}`, `${u}@${DOMAIN}/r`, voucher(i));
    h.port.take();
    h.sm.onMembers(members("c2s-2@1"));
    const frames = h.port.frames.filter((f) => f.op === SessionOp.Vouchers);
    expect(frames.length).toBeGreaterThan(1);
    for (const f of frames) expect(Buffer.byteLength(JSON.stringify(f.meta))).toBeLessThan(65_536);
    const all = Object.assign({}, ...vouchers()["c2s-2"]!.map((m) => m.plain));
    expect(all).toEqual(Object.fromEntries(users.map((u, i) => [`${u}@${DOMAIN}`, voucher(i)])));
  });
});
