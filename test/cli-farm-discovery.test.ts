// The CLI as an admin runs it from another directory than the farm's: it
// finds the farm's config (--config, $XFARM_CONFIG, ./xfarm.toml, the system
// one), its account commands reach the running farm's database or refuse,
// and none of them makes an empty database where it was run.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "../sim/local-farm.js";
import { openStore } from "../xdb-sql/open-store.js";
import { Farm } from "./harness/farm.js";
import { runCommand, type CommandResult } from "../sim/run-command.js";
import { connectClient } from "./harness/xmppjs.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-discovery-"));
/** Where no system config is: the machine's /etc/xfarm must not decide a test. */
const NO_SYSTEM_CONFIG = path.join(tmp, "etc-xfarm.toml");

/** A fresh empty directory to run the CLI in. */
function cwd(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d);
  return d;
}

function xfarm(dir: string, args: string[], env: Record<string, string> = {}, stdin = ""): Promise<CommandResult> {
  const { XFARM_CONFIG: _ignored, ...inherited } = process.env;
  return runCommand(process.execPath, [CLI, ...args], { cwd: dir, env: { ...inherited, XFARM_SYSTEM_CONFIG: NO_SYSTEM_CONFIG, ...env }, stdin });
}

async function logsIn(farm: Farm, username: string, password: string): Promise<void> {
  const c = await connectClient({ port: farm.c2sPorts[0]!.port, username, password });
  await c.xmpp.stop();
}

describe("the CLI run from another directory", () => {
  let farm: Farm;
  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1 });
    await farm.start();
  });
  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("with no config found refuses, naming the places searched, and creates no file", async () => {
    const here = cwd("empty");
    for (const args of [["user", "add", "zed@localhost", "pw"], ["user", "list"], ["db", "status"], ["export"]]) {
      const r = await xfarm(here, args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(`no config file found (looked at --config, $XFARM_CONFIG, ./xfarm.toml, ${NO_SYSTEM_CONFIG})`);
      expect(r.stderr).toContain(`no database at ${path.join(here, "data", "xfarm.db")}`);
    }
    expect(fs.readdirSync(here)).toEqual([]);
  });

  it("adds a user the running farm lets log in, its config given by XFARM_CONFIG, --config, ./xfarm.toml or the system config", async () => {
    const here = cwd("elsewhere");
    expect(await xfarm(here, ["user", "add", "zed@localhost", "zed-pw"], { XFARM_CONFIG: farm.configFile })).toMatchObject({ code: 0, stdout: "created zed@localhost\n" });
    await logsIn(farm, "zed", "zed-pw");
    // The global option, before the subcommand or after it.
    expect(await xfarm(here, ["--config", farm.configFile, "user", "add", "yan@localhost", "yan-pw"])).toMatchObject({ code: 0 });
    expect(await xfarm(here, ["user", "passwd", "yan@localhost", "yan-pw2", "--config", farm.configFile])).toMatchObject({ code: 0 });
    await logsIn(farm, "yan", "yan-pw2");
    expect((await xfarm(here, ["user", "list"], { XFARM_SYSTEM_CONFIG: farm.configFile })).stdout).toBe("yan@localhost\nzed@localhost\n");
    fs.copyFileSync(farm.configFile, path.join(here, "xfarm.toml"));
    expect(await xfarm(here, ["db", "status"])).toMatchObject({ code: 0, stdout: expect.stringContaining("up to date") });
    expect(fs.readdirSync(here)).toEqual(["xfarm.toml"]);
  });

  it("refuses a database that is not the running farm's, naming both", async () => {
    const here = cwd("other-db");
    const other = path.join(here, "other.db");
    await (await openStore(`sqlite:${other}`)).close();
    for (const args of [["user", "add", "wim@localhost", "pw"], ["db", "migrate"], ["import", other]]) {
      const r = await xfarm(here, ["--config", farm.configFile, "--db", `sqlite:${other}`, ...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toBe(`xfarm: the running farm (router router-1) uses the database ${farm.storeUrl}, not sqlite:${other}: give the farm's config (--config) or its database (--db)\n`);
    }
    expect(await farm.readStore((s) => s.accountExists("wim@localhost"))).toBe(false);
  });

  it("refuses when the router at the config's address belongs to another farm (it refuses the admin secret)", async () => {
    const here = cwd("other-farm");
    // Another farm's config and data, whose router address is this farm's.
    fs.mkdirSync(path.join(here, "data"));
    await (await openStore(`sqlite:${path.join(here, "data", "xfarm.db")}`)).close();
    fs.writeFileSync(
      path.join(here, "xfarm.toml"),
      `data_dir = "data"\n[router]\naddresses = ["127.0.0.1:${farm.routerPort}"]\n[secrets]\nadmin = "not this farm's"\n`,
    );
    const r = await xfarm(here, ["user", "add", "vic@localhost", "pw"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refuses this config's admin secret: it runs another farm than .*xfarm\.toml describes/);
  });

  it("asks a password typed on a terminal twice, and refuses two that differ", async () => {
    const here = cwd("tty");
    // script(1) gives the CLI a terminal, fed from the pipe: as typed, both lines ahead of the prompts.
    const spawnScript = (lines: string) =>
      runCommand("script", ["-qec", `${process.execPath} ${CLI} user add pat@localhost --config ${farm.configFile}`, "/dev/null"], { cwd: here, stdin: lines });
    const differ = await spawnScript("pw-one\npw-two\n");
    expect(differ.code).toBe(1);
    expect(differ.stdout).toContain("xfarm: the two passwords differ; nothing was changed");
    expect(await farm.readStore((s) => s.accountExists("pat@localhost"))).toBe(false);
    const same = await spawnScript("pat-pw\npat-pw\n");
    expect(same).toMatchObject({ code: 0, stdout: expect.stringContaining("created pat@localhost") });
    await logsIn(farm, "pat", "pat-pw");
  });
});
