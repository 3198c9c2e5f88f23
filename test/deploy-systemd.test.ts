// The systemd units (deploy/systemd/), the user they run as and the kernel
// settings (deploy/sysctl.d/) as systemd and the kernel read them:
// `systemd-analyze verify` on every unit, its ExecStart pointed at this
// checkout's node and dist/ (verify checks the binary exists; the test checks
// the script and its subcommand), failing on any warning, and their exposure
// score from `systemd-analyze security`; `systemd-sysusers`
// creating the user in a scratch root; every variable they set a config key.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CONFIG_KEYS, envName, loadConfig } from "../lib/config.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UNITS = path.join(ROOT, "deploy/systemd");
const SYSCTL = path.join(ROOT, "deploy/sysctl.d/60-xfarm.conf");
const FIVE_BOXES = path.join(ROOT, "deploy/five-boxes");
const ANALYZE = "/usr/bin/systemd-analyze";
const SYSUSERS = "/usr/bin/systemd-sysusers";
// CI installs systemd (.ci/run): there a missing tool fails the test rather than skipping it.
const systemdIt = (fs.existsSync(ANALYZE) && fs.existsSync(SYSUSERS)) || process.env.CI ? it : it.skip;

/** Each unit file, and the instance verified: the one-box unit, and a named process of each role. */
const UNIT_FILES: Record<string, { verify: string; role: string; nameVar?: string }> = {
  "xfarm.service": { verify: "xfarm.service", role: "start" },
  "xfarm-router@.service": { verify: "xfarm-router@router-a.service", role: "router", nameVar: "XFARM_ROUTER_NAME" },
  "xfarm-sm@.service": { verify: "xfarm-sm@sm-1.service", role: "sm", nameVar: "XFARM_SM_NAME" },
  "xfarm-c2s@.service": { verify: "xfarm-c2s@c2s-1.service", role: "c2s", nameVar: "XFARM_C2S_NAME" },
};

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-units-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** `Key=value` lines of a unit's section, in order (comments and blank lines left out). */
function directives(text: string, section: string): [string, string][] {
  const out: [string, string][] = [];
  let current = "";
  for (const line of text.split("\n")) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) current = header[1]!;
    else if (current === section && /^\w+=/.test(line)) out.push([line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
  }
  return out;
}

function value(text: string, key: string, section = "Service"): string | undefined {
  return directives(text, section).find(([k]) => k === key)?.[1];
}

/** The XFARM_* variables an env file or unit sets. */
function variables(text: string): string[] {
  return [...text.matchAll(/^(?:Environment=)?(XFARM_[A-Z0-9_]+)=/gm)].map((m) => m[1]!);
}

describe("deploy/systemd units", () => {
  it("are exactly the one-box unit and a template per role", () => {
    expect(fs.readdirSync(UNITS).filter((f) => f.endsWith(".service")).sort()).toEqual(Object.keys(UNIT_FILES).sort());
  });

  systemdIt("pass systemd-analyze verify without a warning, run as this checkout", () => {
    for (const [file, { verify, role }] of Object.entries(UNIT_FILES)) {
      const text = fs.readFileSync(path.join(UNITS, file), "utf8");
      const exec = value(text, "ExecStart")!;
      expect(exec, file).toBe(`/usr/bin/node /opt/xfarm/dist/cli/xfarm.js ${role}`);
      // The copy runs this checkout's node and dist/: verify then checks a binary that exists.
      fs.writeFileSync(path.join(scratch, file), text.replaceAll("/usr/bin/node", process.execPath).replaceAll("/opt/xfarm/", ROOT));
      const r = spawnSync(ANALYZE, ["verify", "--man=no", path.join(scratch, verify)], { encoding: "utf8" });
      expect({ file, status: r.status, stderr: r.stderr, stdout: r.stdout }).toEqual({ file, status: 0, stderr: "", stdout: "" });
      // Hardened: systemd's exposure score stays at most 3.0 of 10 (2.8 when written; no system call filter, see the units).
      const security = spawnSync(ANALYZE, ["security", "--offline=true", "--threshold=30", "--no-pager", path.join(scratch, verify)], { encoding: "utf8" });
      expect({ file, status: security.status, score: /exposure level for .*: ([\d.]+)/.exec(security.stdout)?.[1] }).toMatchObject({ file, status: 0 });
      // The script is built and has the subcommand.
      const help = spawnSync(process.execPath, [path.join(ROOT, "dist/cli/xfarm.js"), role, "--help"], { encoding: "utf8" });
      expect({ file, status: help.status }).toEqual({ file, status: 0 });
    }
  });

  it("run as xfarm in its state directory, restart on failure but not after a start-up failure (exit 78), hardened", () => {
    for (const [file, { nameVar }] of Object.entries(UNIT_FILES)) {
      const text = fs.readFileSync(path.join(UNITS, file), "utf8");
      const want: Record<string, string> = {
        User: "xfarm",
        Group: "xfarm",
        StateDirectory: "xfarm",
        WorkingDirectory: "/var/lib/xfarm",
        Restart: "on-failure",
        RestartPreventExitStatus: "78",
        NoNewPrivileges: "yes",
        ProtectSystem: "strict",
        PrivateTmp: "yes",
        CapabilityBoundingSet: "",
      };
      expect(Object.fromEntries(Object.keys(want).map((k) => [k, value(text, k)])), file).toEqual(want);
      const env = directives(text, "Service").filter(([k]) => k === "Environment").map(([, v]) => v);
      // A front end runs on jemalloc (test/malloc.test.ts loads it by this name); the one-box unit's supervisor preloads it (start.malloc).
      const preload = file === "xfarm-c2s@.service" ? ["LD_PRELOAD=libjemalloc.so.2"] : [];
      expect(env, file).toEqual(nameVar ? ["XFARM_CONFIG=/etc/xfarm/xfarm.toml", `${nameVar}=%i`, ...preload] : ["XFARM_CONFIG=/etc/xfarm/xfarm.toml"]);
      expect(value(text, "EnvironmentFile"), file).toBe(nameVar ? "-/etc/xfarm/%i.env" : "-/etc/xfarm/xfarm.env");
    }
  });

  it("give a front end descriptors for the five-box config's c2s.max_connections, within the kernel's fs.nr_open", () => {
    const sysctl = Object.fromEntries([...fs.readFileSync(SYSCTL, "utf8").matchAll(/^([a-z0-9_.]+) = (.+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const config = loadConfig(path.join(FIVE_BOXES, "xfarm.toml"), {});
    for (const file of ["xfarm.service", "xfarm-c2s@.service"]) {
      const limit = Number(value(fs.readFileSync(path.join(UNITS, file), "utf8"), "LimitNOFILE"));
      expect(limit, file).toBeGreaterThan(config.c2s.max_connections + 1000);
      expect(limit, file).toBeLessThanOrEqual(Number(sysctl["fs.nr_open"]));
    }
  });

  it("and the five-box env files set only config keys", () => {
    const known = new Set(CONFIG_KEYS.map((k) => envName(k.key)));
    const files = [...Object.keys(UNIT_FILES).map((f) => path.join(UNITS, f)), ...fs.readdirSync(FIVE_BOXES).filter((f) => f.endsWith(".env")).map((f) => path.join(FIVE_BOXES, f))];
    for (const file of files) {
      for (const v of variables(fs.readFileSync(file, "utf8"))) expect({ file, v, known: known.has(v) || v === "XFARM_CONFIG" }).toEqual({ file, v, known: true });
    }
  });

  systemdIt("create the user xfarm with systemd-sysusers, without a login shell", () => {
    const root = path.join(scratch, "root");
    fs.mkdirSync(path.join(root, "etc"), { recursive: true });
    const r = spawnSync(SYSUSERS, [`--root=${root}`, path.join(UNITS, "xfarm-sysusers.conf")], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const user = fs.readFileSync(path.join(root, "etc/passwd"), "utf8").split("\n").find((l) => l.startsWith("xfarm:"));
    expect(user).toMatch(/^xfarm:x:\d+:\d+:[^:]*:\/var\/lib\/xfarm:\/usr\/sbin\/nologin$/);
  });
});

describe("deploy/sysctl.d", () => {
  it.skipIf(process.platform !== "linux")("names only settings this kernel has", () => {
    const keys = [...fs.readFileSync(SYSCTL, "utf8").matchAll(/^([a-z0-9_.]+) = /gm)].map((m) => m[1]!);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !fs.existsSync(`/proc/sys/${k.replaceAll(".", "/")}`))).toEqual([]);
  });
});
