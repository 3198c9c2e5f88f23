// `xfarm sim` aims at the farm its config describes (sim/config-target.ts):
// the c2s address, the ports of the front ends `xfarm start` runs and the
// first domain, unless the command line or the scenario file names a server.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const CLI = fileURLToPath(new URL("../dist/cli/xfarm.js", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-sim-target-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** `xfarm sim --print ARGS` from an empty directory, with no XFARM_* variable: the resolved server, or the error. */
function printed(args: string[]): { server?: { host: string; ports: number[]; domain: string; security: string }; stderr: string } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("XFARM_")));
  const r = spawnSync(process.execPath, [CLI, "sim", "--print", ...args], { cwd: dir, env, encoding: "utf8" });
  return r.status === 0 ? { server: JSON.parse(r.stdout).server, stderr: r.stderr } : { stderr: r.stderr };
}

describe("xfarm sim's target", () => {
  const config = write(
    "farm.toml",
    ['domains = ["example.net"]', "[c2s]", 'host = "127.0.0.3"', "port = 7222", "tls_port = 7223", "[start]", "c2s_count = 3", "port_step = 10"].join("\n"),
  );

  it("is the config's front ends: c2s.host, c2s.port stepped by start.port_step for start.c2s_count, the first domain", () => {
    expect(printed(["--config", config]).server).toMatchObject({ host: "127.0.0.3", ports: [7222, 7232, 7242], domain: "example.net", security: "starttls" });
    // Direct TLS: their c2s.tls_port.
    expect(printed(["--config", config, "--security", "direct"]).server).toMatchObject({ ports: [7223, 7233, 7243] });
  });

  it("yields to the command line and to the scenario file", () => {
    expect(printed(["--config", config, "--port", "5222", "--host", "127.0.0.1", "--domain", "example.org"]).server).toMatchObject({
      host: "127.0.0.1",
      ports: [5222],
      domain: "example.org",
    });
    const scenario = write("scenario.toml", "[server]\nport = 6000\n");
    expect(printed([scenario, "--config", config]).server).toMatchObject({ host: "127.0.0.3", ports: [6000], domain: "example.net" });
  });

  it("without a config file, is the farm `xfarm start` runs on the defaults; a listener on every interface is reached on loopback", () => {
    expect(printed([]).server).toMatchObject({ host: "127.0.0.1", ports: [5222, 5322], domain: "localhost" });
    const everywhere = write("everywhere.toml", '[c2s]\nhost = "0.0.0.0"\ntls_port = 0\n[start]\nc2s_count = 1\n');
    expect(printed(["--config", everywhere]).server).toMatchObject({ host: "127.0.0.1", ports: [5222] });
    expect(printed(["--config", everywhere, "--security", "direct"]).stderr).toContain("c2s.tls_port is 0 (no direct TLS port): give --port");
  });
});
