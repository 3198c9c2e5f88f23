// `xfarm start`'s supervisor: it restarts a killed child and a hung one and
// tells a webhook; a second farm started on the first one's ports fails at
// start-up, and its supervisor gives up on its children (START-UP FAILURE
// CONTRACT: exit code 78 and the key, three times running), says so, alerts
// and exits, while the first farm serves on (docs/metrics.md).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { httpGet } from "./harness/metrics.js";
import { Webhook } from "./harness/webhook.js";
import { connectClient } from "./harness/xmppjs.js";

describe("the supervisor heals, alerts and gives up", () => {
  let farm: Farm;
  let hook: Webhook;
  const others: Farm[] = [];

  beforeAll(async () => {
    hook = await Webhook.listen();
    // A hung child is restarted after 10 s unready (start-up on two busy cores takes less), and called down after 2 s.
    farm = await Farm.create({ c2sCount: 2, logLevel: "info", start: { alert_webhook: hook.url, alert_down_after: 2, unready_restart_after: 10 } });
    await farm.start();
    await farm.addUser("alice@localhost", "pw");
  }, 60_000);

  afterAll(async () => {
    for (const f of others) {
      await f.stop();
      f.cleanup();
    }
    await farm?.stop();
    farm?.cleanup();
    await hook?.close();
  });

  it("restarts a SIGKILLed child and posts the restarted alert", { timeout: 60_000 }, async () => {
    const since = hook.received.length;
    const pid = farm.childPid("c2s-2");
    process.kill(pid, "SIGKILL");
    const alert = await hook.waitFor((a) => a.event === "restarted" && a.child === "c2s-2", since);
    expect(alert).toMatchObject({ role: "c2s", reason: "killed by SIGKILL" });
    expect(new Date(alert.time).getTime()).toBeGreaterThan(0);
    await farm.waitRestarted("c2s-2", pid);
    await farm.waitLinked(0, ["c2s-2"]);
    await farm.until("c2s-2 ready", () => httpGet(farm.metricsUrl("c2s-2", "/readyz")), (r) => r.status === 200);
  });

  it("calls a hung child down, then restarts it", { timeout: 90_000 }, async () => {
    // The supervisor's own view: it has seen c2s-1 ready (else it has been down since its start, and was called so).
    await farm.waitFor((l) => l.proc === "supervisor" && l.child === "c2s-1" && l.msg === "ready", 20_000);
    const since = hook.received.length;
    const pid = farm.childPid("c2s-1");
    process.kill(pid, "SIGSTOP");
    const down = await hook.waitFor((a) => a.event === "down" && a.child === "c2s-1", since);
    expect(down.reason).toMatch(/^not ready for \d+ s: no answer on \/readyz/);
    const restarted = await hook.waitFor((a) => a.event === "restarted" && a.child === "c2s-1", since);
    expect(restarted.reason).toMatch(/^not ready for \d+ s: no answer on \/readyz/);
    await farm.waitRestarted("c2s-1", pid);
    await farm.waitLinked(0, ["c2s-1"]);
    const c = await connectClient({ port: farm.c2sPorts[0]!.port, username: "alice", password: "pw" });
    await c.stop();
  });

  it("a second farm on the same ports: its supervisor gives up, says why, alerts and exits 78; the first serves on", { timeout: 90_000 }, async () => {
    const since = hook.received.length;
    const second = await Farm.create({ c2sCount: 2, logLevel: "info", basePort: farm.routerPort, start: { alert_webhook: hook.url } });
    others.push(second);
    second.launch();
    expect(await second.exited()).toBe(78);
    // Each process fails on its first port, its metrics port, and names that key. Whichever role is given up
    // on entirely first (each process of it failed three times) stops the farm: it cannot serve without it.
    const gaveUp = second.lines.filter((l) => l.proc === "supervisor" && /^giving up on /.test(l.msg));
    expect(gaveUp.length).toBeGreaterThan(0);
    for (const line of gaveUp) {
      const role = String(line.child).split("-")[0];
      expect(line).toMatchObject({ key: `metrics.${role}_port`, failures: 3 });
      expect(line.msg).toContain("EADDRINUSE");
      expect(second.lines.filter((l) => l.proc === line.child && l.level === "fatal" && l.key === `metrics.${role}_port`).length).toBeGreaterThanOrEqual(3);
    }
    const fatal = second.lines.find((l) => l.proc === "supervisor" && l.level === "fatal")!;
    expect(fatal.msg).toMatch(/^every (router|sm|c2s) process was given up on: the farm cannot serve; stopping it$/);
    const first = gaveUp[0]!;
    const alert = await hook.waitFor((a) => a.event === "gave-up" && a.child === first.child, since);
    expect(alert).toMatchObject({ role: String(first.child).split("-")[0], key: first.key });
    expect(alert.reason).toContain("EADDRINUSE");
    // No restart after giving up, and none of the first farm's processes moved.
    expect(second.lines.filter((l) => l.msg === "serving /metrics, /healthz and /readyz")).toEqual([]);
    const entries = await farm.status();
    expect(entries.map((e) => e.name).sort()).toEqual(["c2s-1", "c2s-2", "sm-1"]);
    for (const name of ["router-1", "sm-1", "c2s-1", "c2s-2"]) expect((await httpGet(farm.metricsUrl(name, "/readyz"))).status).toBe(200);
    const c = await connectClient({ port: farm.c2sPorts[1]!.port, username: "alice", password: "pw" });
    await c.stop();
  });

  it("a webhook that cannot be reached is logged, and the farm heals all the same", { timeout: 60_000 }, async () => {
    // Port 1 on loopback: nothing listens, the post is refused at once.
    const lonely = await Farm.create({ c2sCount: 1, logLevel: "info", start: { alert_webhook: "http://127.0.0.1:1/alerts" } });
    others.push(lonely);
    await lonely.start();
    const pid = lonely.childPid("c2s-1");
    process.kill(pid, "SIGKILL");
    const line = await lonely.waitFor((l) => l.proc === "supervisor" && l.msg === "alert webhook unreachable; alert not sent", 20_000);
    expect(line).toMatchObject({ level: "warn", event: "restarted", child: "c2s-1" });
    await lonely.waitRestarted("c2s-1", pid);
    await lonely.waitLinked(0, ["c2s-1"]);
  });
});
