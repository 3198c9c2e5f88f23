// A farm process that cannot start as configured, run alone as an admin
// (or a supervisor) runs it: it exits with code 78 after exactly one fatal
// JSON line naming the config key to fix, tells its supervisor the same over
// IPC, and prints nothing that is not a log line.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../sim/local-farm.js";
import { Farm } from "./harness/farm.js";
import { freePortBase } from "../sim/free-ports.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-fail-fast-"));
let base = 0;

/** A config for a process alone: its own data_dir, ports from this worker's range, the secrets given. */
function configFile(name: string, more = "", secrets = `"sm-1" = "s"\n"c2s-1" = "c"\n`): string {
  const f = path.join(dir, `${name}.toml`);
  fs.writeFileSync(
    f,
    `data_dir = ${JSON.stringify(path.join(dir, name))}
log_level = "debug"
${more}
[router]
port = ${base}
addresses = ["127.0.0.1:${base}"]
component_port = ${base + 1}

[console]
port = 0

[metrics]
router_port = 0
sm_port = 0
c2s_port = 0

[c2s]
host = "127.0.0.1"
port = ${base + 2}
tls_port = ${base + 3}
tls_cert = ${JSON.stringify(process.env.XFARM_TEST_CERT)}
tls_key = ${JSON.stringify(process.env.XFARM_TEST_KEY)}

[secrets]
${secrets}`,
  );
  return f;
}

interface Run {
  code: number | null;
  lines: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  ipc: unknown[];
}

/** `xfarm ROLE --config F` spawned with an IPC channel, as a supervisor spawns it; resolves when it exits. */
function runProcess(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe", "ipc"] });
    let stdout = "";
    let stderr = "";
    const ipc: unknown[] = [];
    p.stdout!.on("data", (d) => (stdout += d));
    p.stderr!.on("data", (d) => (stderr += d));
    p.on("message", (m) => ipc.push(m));
    p.on("close", (code) => {
      const lines = stdout
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { notJson: l };
          }
        });
      resolve({ code, lines, stdout, stderr, ipc });
    });
  });
}

/** What every failure must look like; returns its fatal line. */
function expectFailedOn(run: Run, key: string): Record<string, unknown> {
  expect(run.stderr).toBe("");
  expect(run.lines.filter((l) => "notJson" in l)).toEqual([]);
  const fatal = run.lines.filter((l) => l.level === "fatal");
  expect(fatal).toHaveLength(1);
  expect(fatal[0]).toMatchObject({ key, msg: expect.any(String) });
  expect(fatal[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(run.ipc).toEqual([{ type: "startup-failure", key, message: fatal[0]!.msg }]);
  expect(run.code).toBe(78);
  return fatal[0]!;
}

/** Holds a port as another process would. */
async function takePort(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

describe("a process that cannot start", () => {
  beforeAll(async () => {
    base = await freePortBase([0, 1, 2, 3]);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ["c2s", "c2s.port", 2],
    ["c2s", "c2s.tls_port", 3],
    ["router", "router.port", 0],
    ["router", "router.component_port", 1],
  ])("xfarm %s with %s taken", async (role, key, offset) => {
    const held = await takePort(base + offset);
    try {
      const fatal = expectFailedOn(await runProcess([role, "--config", configFile(`${role}-${offset}`)]), key);
      expect(fatal.msg).toContain(`${base + offset}`);
      expect(fatal.msg).toContain("EADDRINUSE");
    } finally {
      await new Promise((r) => held.close(r));
    }
  });

  it("xfarm c2s and start with a certificate that is not there, xfarm c2s with a key that is not PEM", async () => {
    const missing = configFile("cert-missing");
    fs.writeFileSync(missing, fs.readFileSync(missing, "utf8").replace(/tls_cert = .*/, `tls_cert = ${JSON.stringify(path.join(dir, "nowhere.crt"))}`));
    expect(expectFailedOn(await runProcess(["c2s", "--config", missing]), "c2s.tls_cert").msg).toContain("nowhere.crt");

    // The supervisor loads it too before its front ends start: `xfarm start` stops the same way.
    expect(expectFailedOn(await runProcess(["start", "--config", missing]), "c2s.tls_cert").proc).toBe("supervisor");

    const garbage = path.join(dir, "garbage.key");
    fs.writeFileSync(garbage, "not a key\n");
    const badKey = configFile("key-garbage");
    fs.writeFileSync(badKey, fs.readFileSync(badKey, "utf8").replace(/tls_key = .*/, `tls_key = ${JSON.stringify(garbage)}`));
    expect(expectFailedOn(await runProcess(["c2s", "--config", badKey]), "c2s.tls_key").msg).toContain("garbage.key");
  });

  it("xfarm sm and c2s with a database that cannot be reached", async () => {
    const f = configFile("no-db", `db = "mysql://xfarm:secret@127.0.0.1:1/x"`);
    for (const role of ["sm", "c2s"]) {
      const fatal = expectFailedOn(await runProcess([role, "--config", f]), "db");
      expect(fatal.msg).toContain("mysql://xfarm@127.0.0.1:1/x");
      expect(fatal.msg).not.toContain("secret");
    }
  });

  it("xfarm sm with no link secret, and with a config key that does not exist", async () => {
    expectFailedOn(await runProcess(["sm", "--config", configFile("no-secret", "", `"c2s-1" = "c"\n`)]), 'secrets."sm-1"');
    expectFailedOn(await runProcess(["sm", "--config", configFile("bad-key", "no_such_key = 1")]), "no_such_key");
  });

  it("xfarm sm and c2s whose secret a running farm's router refuses at the first link-up", async () => {
    const farm = await Farm.create({ c2sCount: 1 });
    await farm.start();
    try {
      // Another box's config: the farm's router, but secrets that are not the farm's.
      const f = configFile("wrong-secret", "", `"sm-1" = "not the farm's"\n"c2s-9" = "nor this"\n`);
      fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace(`addresses = ["127.0.0.1:${base}"]`, `addresses = ["127.0.0.1:${farm.routerPort}"]`));
      expect(expectFailedOn(await runProcess(["sm", "--config", f]), 'secrets."sm-1"').msg).toContain("refused");
      fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace("[c2s]", '[c2s]\nname = "c2s-9"'));
      expectFailedOn(await runProcess(["c2s", "--config", f]), 'secrets."c2s-9"');
      // The farm's own processes are untouched.
      expect((await farm.status()).map((e) => e.name).sort()).toEqual(["c2s-1", "sm-1"]);
    } finally {
      await farm.stop();
      farm.cleanup();
    }
  });
});
