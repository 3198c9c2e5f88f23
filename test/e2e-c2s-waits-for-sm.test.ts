// A front end that starts before any session manager keeps its client ports
// closed (a client's connection is refused, and it tries its next address or
// again) and says so in its info (`noSm`, docs/redirection.md); once an sm
// links it opens them and serves. The router and the c2s run under `xfarm
// start` (start.sm_count = 0); the sm is started alone afterwards, as on a
// box of its own that comes up late.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../sim/local-farm.js";
import { Farm } from "./harness/farm.js";
import { connectClient } from "./harness/xmppjs.js";

/** How a TCP connection to `port` ends: "refused", or "accepted" once the server took it. */
function tcpOutcome(port: number): Promise<"refused" | "accepted"> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve("accepted");
    });
    s.once("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNREFUSED" ? resolve("refused") : reject(err)));
  });
}

describe("a front end started before any sm", () => {
  let farm: Farm;
  let sm: ChildProcess | null = null;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, smCount: 0, secrets: { "sm-1": "secret-of-sm-1" } });
    // Returns once c2s-1 is linked: with no sm in the table, nothing more is waited for.
    await farm.start();
    await farm.addUsers("u", 1, "pw", 64);
  }, 60_000);

  afterAll(async () => {
    if (sm && sm.exitCode === null) {
      const exited = new Promise((r) => sm!.once("exit", r));
      sm.kill("SIGINT");
      await exited;
    }
    await farm.stop();
    farm.cleanup();
  }, 60_000);

  it("refuses clients until an sm links, then serves them", { timeout: 90_000 }, async () => {
    const c2s = async () => (await farm.status()).find((e) => e.name === "c2s-1");
    const { port, tlsPort } = farm.c2sPorts[0]!;
    expect((await c2s())?.info.noSm).toBe(true);
    expect(await tcpOutcome(port)).toBe("refused");
    expect(await tcpOutcome(tlsPort)).toBe("refused");

    const log = fs.openSync(path.join(farm.dir, "sm-1.log"), "a");
    const env = { ...process.env, XFARM_CONFIG: farm.configFile, XFARM_SM_NAME: "sm-1", XFARM_METRICS_SM_PORT: "0" };
    sm = spawn(process.execPath, [CLI, "sm"], { env, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    // Linked, and c2s-1 open again (Farm.waitLinked waits for both).
    await farm.waitLinked(0, ["sm-1", "c2s-1"]);
    expect((await c2s())?.info.noSm).toBeUndefined();
    const u1 = await connectClient({ port, username: "u1", password: "pw" });
    expect(u1.jid).toMatch(/^u1@localhost\//);
    await u1.stop();
  });
});
