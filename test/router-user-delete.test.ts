// How the router runs `xfarm user del` (protocol §1.7): every other sm ends
// its sessions of the user before the owner deletes the account, and the
// admin gets the owner's answer. A real Router over loopback, the sms as
// hand-driven links, so the test decides when each answers.
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ControlMessage } from "../lib/link/control.js";
import { FrameType, type Frame } from "../lib/link/frames.js";
import { LinkClient } from "../lib/link/link-client.js";
import { rendezvousOwner } from "../lib/link/member.js";
import { Router } from "../router/router.js";
import { RawLink } from "./harness/raw-link.js";

const SECRETS = new Map([
  ["sm-1", "s3cret-sm-1"],
  ["sm-2", "s3cret-sm-2"],
  ["admin", "s3cret-admin"],
]);
const log = pino({ level: "silent" });
const USER = "alice@localhost";
const OWNER = rendezvousOwner(["sm-1", "sm-2"], USER)!;
const OTHER = OWNER === "sm-1" ? "sm-2" : "sm-1";

const control = (f: Frame): ControlMessage | null => (f.type === FrameType.Control ? (JSON.parse(f.body.toString()) as ControlMessage) : null);
const orders = (link: RawLink) => link.frames.map(control).filter((m) => m?.op === "delete-account");

describe("xfarm user del, as the router runs it", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function router() {
    const r = new Router({ name: "router-1", host: "127.0.0.1", port: 0, secretOf: (n) => SECRETS.get(n), log, domains: ["localhost"] });
    const { port } = await r.listen();
    cleanup.push(() => r.close());
    return { r, port };
  }

  async function sm(port: number, name: string): Promise<RawLink> {
    const { link } = await RawLink.authenticate(port, { name, role: "sm", secret: SECRETS.get(name)!, info: { started: 1 } });
    cleanup.push(() => link.destroy());
    return link;
  }

  /** Everything the router sent this link so far has arrived once this returns: a ping's pong comes after it. */
  async function flushed(link: RawLink, id: number): Promise<void> {
    link.sendJson(FrameType.Control, { op: "ping", id });
    await link.next((f) => control(f)?.op === "pong" && (control(f) as { id: number }).id === id);
  }

  /** `xfarm user del` sends this; resolves with the router's result. */
  function admin(port: number): Promise<ControlMessage> {
    const c = new LinkClient({ name: "admin", role: "admin", secret: SECRETS.get("admin")!, routers: [`127.0.0.1:${port}`], info: {}, log });
    cleanup.push(() => c.stop());
    return new Promise((resolve) => {
      c.once("up", () => c.sendControl({ op: "user-delete", user: USER }));
      c.on("control", (m) => m.op === "result" && resolve(m));
      c.start();
    });
  }

  it("answers at once that no sm is linked", async () => {
    const { port } = await router();
    expect(await admin(port)).toEqual({ op: "result", ok: false, error: "no session manager is linked" });
  });

  it("asks the owner to delete only once the other sm has ended its sessions, and answers with the owner's outcome", async () => {
    const { r, port } = await router();
    const owner = await sm(port, OWNER);
    const other = await sm(port, OTHER);
    await flushed(other, 1);
    expect(r.members.filter((m) => m.role === "sm")).toHaveLength(2);
    const result = admin(port);

    await other.next((f) => control(f)?.op === "delete-account");
    const [first] = orders(other) as Extract<ControlMessage, { op: "delete-account" }>[];
    expect(first).toEqual({ op: "delete-account", id: first!.id, user: USER, remove: false });
    await flushed(owner, 2);
    expect(orders(owner)).toEqual([]);

    other.sendJson(FrameType.Control, { op: "account-deleted", id: first!.id, ok: true });
    await owner.next((f) => control(f)?.op === "delete-account");
    expect(orders(owner)).toEqual([{ op: "delete-account", id: first!.id, user: USER, remove: true }]);

    owner.sendJson(FrameType.Control, { op: "account-deleted", id: first!.id, ok: false, error: "store unavailable" });
    expect(await result).toEqual({ op: "result", ok: false, error: "store unavailable" });
  });

  it("goes on without an sm that leaves, and fails when the owner leaves before answering", async () => {
    const { port } = await router();
    const owner = await sm(port, OWNER);
    const other = await sm(port, OTHER);
    await flushed(other, 1);
    const result = admin(port);
    await other.next((f) => control(f)?.op === "delete-account");
    other.destroy();
    await owner.next((f) => control(f)?.op === "delete-account");
    expect(orders(owner)).toMatchObject([{ user: USER, remove: true }]);
    owner.destroy();
    expect(await result).toEqual({ op: "result", ok: false, error: "the session manager left" });
  });
});
