// Two routers as an active/passive pair: when the active one is SIGKILLed,
// the passive takes over within the election time, every component re-links,
// no client connection drops, and the old active comes back passive.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouterStatus } from "../sim/local-farm.js";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("an active/passive router pair", () => {
  let farm: Farm;
  let a: TestClient;
  let b: TestClient;
  let active = "";
  let passive = "";
  const COMPONENTS = ["sm-1", "sm-2", "c2s-1", "c2s-2"];
  /** Each router's state is asked of it over its admin link (protocol §1.7). */
  const ask = (router: string) => farm.routerStatus([farm.routerAddresses[Number(router.slice("router-".length)) - 1]!]);
  /** An active router with every component linked to it, each since `since` (ms since the epoch). */
  const holdsAll = (s: RouterStatus, since = 0) => s.active === true && COMPONENTS.every((n) => s.entries.some((e) => e.name === n && e.linkedAt >= since));

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, routerCount: 2, smCount: 2 });
    await farm.start();
    await farm.addUsers("u", 2, "pw", 64);
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("elects one active router, and every component links to it", async () => {
    active = (await farm.until("an active router holding every component", () => farm.routerStatus(), (s) => holdsAll(s))).router;
    passive = active === "router-1" ? "router-2" : "router-1";
    expect((await ask(passive)).active).toBe(false);
    a = await connectClient({ port: farm.c2sPorts[0]!.port, username: "u1", password: "pw", resource: "a" });
    b = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u2", password: "pw", resource: "b" });
    await b.xmpp.send(xml("presence"));
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id: "before" }, xml("body", {}, "before")));
    await b.next((s) => s.is("message") && s.attrs.id === "before");
  });

  it("fails over to the passive router with no client dropped, and the old active returns passive", async () => {
    const before = farm.lines.length;
    const killed = Date.now();
    const pid = farm.childPid(active);
    process.kill(pid, "SIGKILL");
    await farm.until(`${passive} active, every component linked to it`, () => ask(passive), (s) => holdsAll(s, killed), 20_000);
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id: "after" }, xml("body", {}, "after")));
    expect((await b.next((s) => s.is("message") && s.attrs.id === "after")).getChildText("body")).toBe("after");
    await b.xmpp.send(xml("message", { to: "u1@localhost/a", type: "chat", id: "back" }, xml("body", {}, "back")));
    await a.next((s) => s.is("message") && s.attrs.id === "back");
    expect(farm.lines.filter((l) => (l.msg === "stream error" || l.msg === "redirected") && /^u[12]@/.test(String(l.user)))).toEqual([]);
    // The supervisor restarts the old active; it finds its peer active and stays passive.
    await farm.waitRestarted(active, pid);
    await farm.until(`${active} back, passive`, () => ask(active), (s) => s.active === false, 20_000);
    const settled = farm.lines.length;
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id: "settled" }, xml("body", {}, "settled")));
    await b.next((s) => s.is("message") && s.attrs.id === "settled");
    // Never, not even for a moment between two status requests: the routers' and the components' logs say so.
    expect(farm.lines.slice(before).some((l) => l.proc === active && l.msg === "became the active router")).toBe(false);
    expect(farm.lines.slice(settled).some((l) => l.msg === "component left")).toBe(false);
    // `xfarm status` asks the router that is active now, whichever address comes first in the config.
    const r = await farm.cli("status", "--json");
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { router: string; active: boolean; entries: { name: string }[] };
    expect({ router: status.router, active: status.active }).toEqual({ router: passive, active: true });
    expect(status.entries.map((e) => e.name).sort()).toEqual(["c2s-1", "c2s-2", "sm-1", "sm-2"]);
  });
});
