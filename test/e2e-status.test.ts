// `xfarm status` against real farms: every process's PID (the kernel's, from
// the supervisor's process tree), memory, CPU, uptime and counters; the sm at
// its host; after a router failover, the new active router's table; and a
// refused connection failing at once, saying so.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouterReply } from "../lib/link/admin-link.js";
import type { StatusEntry } from "../lib/link/control.js";
import { freePortBase } from "../sim/free-ports.js";
import { CLI, type RouterStatus } from "../sim/local-farm.js";
import { Farm } from "./harness/farm.js";
import { runCommand } from "../sim/run-command.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

/** What `xfarm status --json` prints: the active router's answer, with every router's reply. */
type StatusJson = Partial<RouterStatus> & { entries: StatusEntry[]; routers: RouterReply<"status">[] };

async function statusJson(farm: Farm): Promise<StatusJson> {
  const r = await farm.cli("status", "--json");
  if (r.code !== 0) throw new Error(`xfarm status --json: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

/** The cells of `xfarm status`'s line for `name`. */
function line(out: string, name: string): string[] {
  const found = out.split("\n").find((l) => l.startsWith(`${name} `));
  if (!found) throw new Error(`no line for ${name} in:\n${out}`);
  return found.split(/ {2,}/);
}

const HEADER = ["NAME", "ROLE", "HOST", "PID", "STATE", "SESSIONS", "CONNS", "RSS", "CPU", "LAG", "UPTIME"];
const col = (name: string) => HEADER.indexOf(name);

describe("xfarm status on a farm", () => {
  let farm: Farm;
  let a: TestClient | undefined;
  let b: TestClient | undefined;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    await farm.addUsers("u", 2, "pw", 64);
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("lists each process's real PID, its memory, CPU, uptime, logins and messages, and the sm at its host", async () => {
    a = await connectClient({ port: farm.c2sPorts[0]!.port, username: "u1", password: "pw", resource: "a" });
    b = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u2", password: "pw", resource: "b" });
    await b.xmpp.send(xml("presence"));
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id: "m1" }, xml("body", {}, "hi")));
    await b.next((s) => s.is("message") && s.attrs.id === "m1");
    // Reports come every two seconds: wait until those that count the login and the message have come.
    const status = await farm.until(
      "load reports counting the login and the message",
      () => statusJson(farm),
      (s) => {
        const load = (name: string) => s.entries.find((e) => e.name === name)?.load;
        return load("c2s-1")?.messages === 1 && load("c2s-1")?.logins === 1 && load("c2s-2")?.logins === 1 && (load("sm-1")?.messages ?? 0) >= 1 && load("sm-1")?.sessions === 2;
      },
    );
    expect(status.active).toBe(true);
    const rows = [status.self!, ...status.entries];
    expect(rows.map((e) => e.name).sort()).toEqual(["c2s-1", "c2s-2", "router-1", "sm-1"]);
    for (const e of rows) {
      expect(e.load?.pid, e.name).toBe(farm.childPid(e.name));
      expect(e.load?.rss, e.name).toBeGreaterThan(0);
      expect(e.load?.heap, e.name).toBeGreaterThan(0);
      expect(typeof e.load?.cpu, e.name).toBe("number");
      expect(e.load?.host, e.name).toBe(os.hostname());
      expect(e.load?.started, e.name).toBeLessThanOrEqual(Date.now());
    }
    expect(status.routers).toEqual([{ address: farm.routerAddresses[0], answer: expect.objectContaining({ router: "router-1", active: true }) }]);

    const r = await farm.cli("status");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split("\n")[0]!.split(/ {2,}/)).toEqual(HEADER);
    for (const e of rows) {
      const cells = line(r.stdout, e.name);
      expect(cells[col("PID")], e.name).toBe(String(farm.childPid(e.name)));
      // Its box's name: never a link's ephemeral port.
      expect(cells[col("HOST")], e.name).toBe(os.hostname());
      expect(cells[col("RSS")], e.name).toMatch(/^\d+M$/);
      expect(cells[col("CPU")], e.name).toMatch(/^\d+%$/);
      expect(cells[col("LAG")], e.name).toMatch(/^\d+ms$/);
      expect(cells[col("UPTIME")], e.name).toMatch(/^\d+[smhd]/);
    }
    expect(line(r.stdout, "router-1")[col("STATE")]).toBe("active");
    expect(line(r.stdout, "sm-1")[col("SESSIONS")]).toBe("2");
    expect(line(r.stdout, "c2s-1")[col("STATE")]).toBe("active");
  });
});

describe("xfarm status on a router pair", () => {
  let farm: Farm;
  const COMPONENTS = ["c2s-1", "sm-1"];

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, routerCount: 2 });
    await farm.start();
  }, 60_000);

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
  });

  it("after the active router is killed, shows the new active router's whole table and the old one unreachable or passive", async () => {
    const holdsAll = (s: StatusJson, since = 0) => s.active === true && COMPONENTS.every((n) => s.entries.some((e) => e.name === n && e.linkedAt >= since && e.load));
    const before = await farm.until("an active router holding every component", () => statusJson(farm), (s) => holdsAll(s));
    const active = before.router!;
    const passive = active === "router-1" ? "router-2" : "router-1";
    const states = Object.fromEntries(before.routers.map((r) => ("answer" in r ? [r.answer.router, r.answer.active] : [r.address, r.error])));
    expect(states).toEqual({ [active]: true, [passive]: false });
    const killed = Date.now();
    process.kill(farm.childPid(active), "SIGKILL");
    const after = await farm.until(`${passive} active with every component`, () => statusJson(farm), (s) => s.router === passive && holdsAll(s, killed), 30_000);
    const old = after.routers.find((r) => r.address === farm.routerAddresses[Number(active.slice("router-".length)) - 1]);
    // Killed, it refuses until the supervisor restarts it; restarted, it finds its peer active and stays passive.
    expect(old && ("error" in old ? "unreachable" : old.answer.active === false ? "passive" : "active")).toMatch(/^(unreachable|passive)$/);

    const r = await farm.cli("status");
    expect(r.code, r.stderr).toBe(0);
    expect(line(r.stdout, passive)[col("STATE")]).toBe("active");
    expect(line(r.stdout, passive)[col("PID")]).toBe(String(farm.childPid(passive)));
    for (const name of COMPONENTS) expect(line(r.stdout, name)[col("PID")]).toBe(String(farm.childPid(name)));
    const oldRow = r.stdout.split("\n").find((l) => / router +/.test(l) && !l.startsWith(`${passive} `))!;
    expect(oldRow).toMatch(/ (unreachable|passive)( |$)/);
  });
});

describe("xfarm status with no router listening", () => {
  it("fails at once, saying the connection was refused", async () => {
    const port = await freePortBase([0]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-status-"));
    const config = path.join(dir, "xfarm.toml");
    fs.writeFileSync(config, `domains = ["localhost"]\ndata_dir = ${JSON.stringify(dir)}\n[router]\naddresses = ["127.0.0.1:${port}"]\n[secrets]\nadmin = "admin-secret"\n`);
    try {
      const r = await runCommand(process.execPath, [CLI, "status", "--config", config]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: connection refused`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
