// No split brain (issue 15): two routers whose peer link runs through a proxy
// that the test pauses (a partition: nothing closes, nothing flows), an sm and
// a c2s linked to them. The lease in the database keeps exactly one router
// active through the partition and after it heals, and a router SIGSTOPped
// past its lease does not take the farm back when it wakes. Each router's
// state is asked of it over its admin link (protocol §1.7), never read from
// the log.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminRequest } from "../lib/cli/admin-link.js";
import { loadConfig, type Config } from "../lib/config.js";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import { freePortBase } from "../sim/free-ports.js";
import { CLI } from "../sim/local-farm.js";
import { PausableProxy } from "../sim/pausable-proxy.js";
import { openStore } from "../xdb-sql/open-store.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const ELECTION_S = 1;
const LEASE_S = 2;
/** The link's silence limit (lib/link/control.ts) and its 2 s ping period: a paused link is cut within 8 s. */
const CUT_MS = 8_000;

describe("a router pair partitioned, and a router paused past its lease", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-partition-"));
  const procs = new Map<string, ChildProcess>();
  const proxies: PausableProxy[] = [];
  let config: Config;
  let configFile: string;
  let routers: Record<string, string>;
  let c2sPort = 0;
  let a: TestClient;
  let b: TestClient;

  /** Whether the router at `address` says it is active; null when it does not answer. */
  const activeAt = async (address: string): Promise<boolean | null> => {
    try {
      return (await adminRequest(config, { op: "status-request" }, "status", 2_000, [address])).active === true;
    } catch {
      return null;
    }
  };
  const states = async () => Object.fromEntries(await Promise.all(Object.entries(routers).map(async ([n, addr]) => [n, await activeAt(addr)] as const)));
  const until = async (what: () => Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await what())) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Asks both routers over and over for `ms`: exactly one active each time (a router not answering counts as not active). */
  const exactlyOneActiveFor = async (ms: number, expected?: string) => {
    const end = Date.now() + ms;
    let samples = 0;
    while (Date.now() < end) {
      const s = await states();
      const active = Object.keys(s).filter((n) => s[n] === true);
      expect(active, JSON.stringify(s)).toHaveLength(1);
      if (expected) expect(active).toEqual([expected]);
      samples++;
    }
    expect(samples).toBeGreaterThan(5);
  };
  const exchange = async (id: string) => {
    await a.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id }, xml("body", {}, id)));
    expect((await b.next((s) => s.is("message") && s.attrs.id === id, 20_000)).getChildText("body")).toBe(id);
  };
  const run = (name: string, role: string, env: Record<string, string>) => {
    const log = fs.openSync(path.join(dir, `${name}.log`), "a");
    const p = spawn(process.execPath, [CLI, role, "--config", configFile], { stdio: ["ignore", log, log], env: { ...process.env, ...env } });
    procs.set(name, p);
  };

  beforeAll(async () => {
    const base = await freePortBase([0, 1, 10, 11]);
    routers = { "router-1": `127.0.0.1:${base}`, "router-2": `127.0.0.1:${base + 1}` };
    c2sPort = base + 10;
    const secret = () => randomBytes(18).toString("base64url");
    configFile = path.join(dir, "xfarm.toml");
    fs.writeFileSync(
      configFile,
      `domains = ["localhost"]
data_dir = ${JSON.stringify(path.join(dir, "data"))}
log_level = "debug"

[router]
addresses = ${JSON.stringify(Object.values(routers))}
election = ${ELECTION_S}
lease = ${LEASE_S}
component_port = 0

[c2s]
host = "127.0.0.1"
port = ${c2sPort}
tls_port = ${base + 11}
tls_cert = ${JSON.stringify(process.env.XFARM_TEST_CERT)}
tls_key = ${JSON.stringify(process.env.XFARM_TEST_KEY)}
max_unauthenticated_per_address = 0

[secrets]
${["router-1", "router-2", "sm-1", "c2s-1", "admin"].map((n) => `"${n}" = "${secret()}"`).join("\n")}
`,
    );
    config = loadConfig(configFile, {});
    const store = await openStore(config.db);
    const credentials = await deriveCredentials("pw", 64);
    await store.createAccounts(["u1@localhost", "u2@localhost"].map((user) => ({ user, credentials })));
    await store.close();
    // Each router reaches its peer through its own proxy.
    for (const [name, peer] of [
      ["router-1", base + 1],
      ["router-2", base],
    ] as const) {
      const proxy = await PausableProxy.listen({ host: "127.0.0.1", port: peer });
      proxies.push(proxy);
      const port = name === "router-1" ? base : base + 1;
      run(name, "router", { XFARM_ROUTER_NAME: name, XFARM_ROUTER_PORT: String(port), XFARM_ROUTER_PEER: `127.0.0.1:${proxy.port}` });
    }
    run("sm-1", "sm", {});
    run("c2s-1", "c2s", {});
    await until(async () => {
      try {
        const s = await adminRequest(config, { op: "status-request" }, "status", 2_000);
        return s.active === true && s.entries.length === 2;
      } catch {
        return false;
      }
    }, 30_000);
    a = await connectClient({ port: c2sPort, username: "u1", password: "pw", resource: "a" });
    b = await connectClient({ port: c2sPort, username: "u2", password: "pw", resource: "b" });
    await b.xmpp.send(xml("presence"));
    await exchange("before");
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    for (const p of procs.values()) {
      p.kill("SIGCONT");
      p.kill("SIGTERM");
    }
    await Promise.all([...procs.values()].map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once("exit", r)))));
    await Promise.all(proxies.map((p) => p.close()));
    if (!process.env.XFARM_KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("keeps exactly one router active while the peer link is cut, and after it heals", async () => {
    const s = await states();
    const active = Object.keys(s).find((n) => s[n] === true)!;
    for (const p of proxies) p.pause();
    // Past the link's cut, the election and the lease: the passive router has asked for the lease, and been refused.
    await exactlyOneActiveFor(CUT_MS + (ELECTION_S + LEASE_S) * 1000 + 3_000, active);
    await exchange("partitioned");
    for (const p of proxies) p.resume();
    await exactlyOneActiveFor(CUT_MS, active);
    await exchange("healed");
  }, 60_000);

  it("does not hand the farm back to an active router woken after its lease", async () => {
    const s = await states();
    const stopped = Object.keys(s).find((n) => s[n] === true)!;
    const other = Object.keys(s).find((n) => n !== stopped)!;
    procs.get(stopped)!.kill("SIGSTOP");
    await until(async () => (await activeAt(routers[other]!)) === true, 30_000);
    procs.get(stopped)!.kill("SIGCONT");
    // Woken, it finds its lease lapsed and its peer silent: it steps down before answering anything.
    await exactlyOneActiveFor((ELECTION_S + LEASE_S) * 1000 + 3_000, other);
    // `xfarm status` asks the router that is active now, whichever comes first among the addresses.
    await until(async () => (await adminRequest(config, { op: "status-request" }, "status")).entries.length === 2, 30_000);
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, "status", "--json", "--config", configFile], { stdio: ["ignore", "pipe", "inherit"] });
      let stdout = "";
      p.stdout!.on("data", (d) => (stdout += d));
      p.on("exit", (code) => resolve({ code, stdout }));
    });
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout) as { router: string; active: boolean; entries: { name: string }[] };
    expect({ router: status.router, active: status.active }).toEqual({ router: other, active: true });
    expect(status.entries.map((e) => e.name).sort()).toEqual(["c2s-1", "sm-1"]);
    await exchange("after-wake");
  }, 90_000);
});
