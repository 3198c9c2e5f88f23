// Backpressure on the links (docs/protocol.md §1.10), with a real Router and
// LinkClient on loopback: an sm that stops reading makes the router stop
// reading the c2s that feeds it, so the router holds about one high-water
// mark for it, not everything the c2s sends; the c2s sees its link congested
// (and would stop reading its clients); when the sm reads again, every frame
// arrives, in order.
import net from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { LINK_VERSION, linkProof, newNonce, type HelloBody } from "../lib/link/auth.js";
import { FrameReader, FrameType, decodeRouteHeader, encodeJsonFrame } from "../lib/link/frames.js";
import { LinkClient } from "../lib/link/link-client.js";
import { SM_ADDRESS } from "../lib/link/member.js";
import { Router } from "../router/router.js";

const SECRETS: Record<string, string> = { "c2s-1": "s3cret-c2s", "sm-1": "s3cret-sm" };
const HIGH_WATER = 256 * 1024;
/** A front end's info has the fields of protocol §1.5, or the router refuses the link. */
const C2S_INFO = { host: "localhost", port: 5222, tlsPort: 5223, weight: 1, capacity: 100, started: 1 };
const quiet = pino({ level: "silent" });

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** An sm linked by hand, so the test decides when it reads: it counts the ROUTE frames it is given. */
async function handLinkedSm(port: number): Promise<{ socket: net.Socket; frames: string[] }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  const reader = new FrameReader();
  const frames: string[] = [];
  const nonce = newNonce();
  await new Promise<void>((resolve, reject) => {
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) {
        if (frame.type === FrameType.Hello) {
          const hello = JSON.parse(frame.body.toString()) as HelloBody;
          const proof = linkProof("component", SECRETS["sm-1"]!, hello.nonce, nonce, "sm-1", "sm");
          socket.write(encodeJsonFrame(FrameType.Auth, { v: LINK_VERSION, name: "sm-1", role: "sm", nonce, proof, info: { started: 1 } }));
        } else if (frame.type === FrameType.Welcome) resolve();
        else if (frame.type === FrameType.Route) {
          const h = decodeRouteHeader(frame.body);
          frames.push(frame.body.toString("utf8", h.payloadOffset));
        }
      }
    });
  });
  return { socket, frames };
}

describe("link backpressure", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("holds the sender back while the receiver does not read, and loses nothing", async () => {
    const router = new Router({ name: "router-1", host: "127.0.0.1", port: 0, secretOf: (n) => SECRETS[n], log: quiet, domains: ["localhost"], highWater: HIGH_WATER });
    const { port } = await router.listen();
    cleanup.push(() => router.close());
    const sm = await handLinkedSm(port);
    cleanup.push(() => sm.socket.destroy());
    const c2s = new LinkClient({ name: "c2s-1", role: "c2s", secret: SECRETS["c2s-1"]!, routers: [`127.0.0.1:${port}`], info: C2S_INFO, log: quiet, highWater: HIGH_WATER });
    c2s.start();
    cleanup.push(() => c2s.stop());
    await until(() => c2s.connected && c2s.members.some((m) => m.name === "sm-1"));

    // The sm stops reading; the c2s sends 48 MiB, far more than the kernel's buffers on both hops hold.
    sm.socket.pause();
    const payload = "x".repeat(16 * 1024);
    const count = 3 * 1024;
    let drained = 0;
    c2s.on("drain", () => drained++);
    for (let i = 0; i < count; i++) c2s.send(SM_ADDRESS, "alice@localhost", Buffer.from(`${i} ${payload}`));
    await until(() => {
      const queued = router.statusEntries().find((e) => e.name === "sm-1")!.queued;
      return c2s.congested && queued > 0;
    });
    // What the router holds for the sm stays near the high-water mark: the rest waits at the c2s.
    await new Promise((r) => setTimeout(r, 500));
    expect(router.statusEntries().find((e) => e.name === "sm-1")!.queued).toBeLessThan(HIGH_WATER + 2 * 1024 * 1024);
    expect(c2s.congested).toBe(true);

    sm.socket.resume();
    await until(() => sm.frames.length === count, 30_000);
    expect(sm.frames.map((f) => Number(f.slice(0, f.indexOf(" "))))).toEqual(Array.from({ length: count }, (_, i) => i));
    await until(() => !c2s.congested);
    expect(drained).toBeGreaterThan(0);
  });
});
