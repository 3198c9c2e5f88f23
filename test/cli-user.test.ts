// `xfarm user …` as an admin runs it: the compiled CLI against a config file.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveCredentials, verifyPassword } from "../lib/sasl/scram-credentials.js";
import { openStore } from "../xdb-sql/open-store.js";
import { CLI } from "../sim/local-farm.js";
import { runCommand, type CommandResult } from "../sim/run-command.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-cli-"));
const config = path.join(dir, "xfarm.toml");
fs.writeFileSync(config, `domains = ["localhost", "example.org"]\ndata_dir = ${JSON.stringify(path.join(dir, "data"))}\n`);

function xfarm(args: string[], stdin?: string, cfg = config): Promise<CommandResult> {
  return runCommand(process.execPath, [CLI, ...args, "--config", cfg], { stdin });
}

async function passwordWorks(jid: string, password: string): Promise<boolean> {
  const store = await openStore(`sqlite:${path.join(dir, "data", "xfarm.db")}`);
  try {
    const creds = await store.getCredentials(jid);
    const sha1 = creds?.["SHA-1"];
    const sha256 = creds?.["SHA-256"];
    return !!sha1 && !!sha256 && (await verifyPassword(password, sha1, "SHA-1")) && (await verifyPassword(password, sha256, "SHA-256"));
  } finally {
    await store.close();
  }
}

describe("xfarm user", () => {
  // The farm made its database when it first started: the commands open only an existing one.
  beforeAll(async () => (await openStore(`sqlite:${path.join(dir, "data", "xfarm.db")}`)).close());
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("adds accounts with the password as an argument or on standard input", async () => {
    expect(await xfarm(["user", "add", "Alice@LocalHost", "pw-a"])).toMatchObject({ code: 0, stdout: "created alice@localhost\n" });
    expect(await xfarm(["user", "add", "bob@example.org"], "pw-b\n")).toMatchObject({ code: 0, stdout: "created bob@example.org\n" });
    expect(await passwordWorks("alice@localhost", "pw-a")).toBe(true);
    expect(await passwordWorks("bob@example.org", "pw-b")).toBe(true);
    expect((await xfarm(["user", "list"])).stdout).toBe("alice@localhost\nbob@example.org\n");
    expect((await xfarm(["user", "list", "example.org"])).stdout).toBe("bob@example.org\n");
  });

  it("refuses duplicates, unserved domains, full JIDs and empty passwords with a clear message", async () => {
    expect(await xfarm(["user", "add", "alice@localhost", "x"])).toMatchObject({ code: 1, stderr: "xfarm: alice@localhost already exists\n" });
    expect((await xfarm(["user", "add", "eve@elsewhere.net", "x"])).stderr).toMatch(/elsewhere.net is not served here/);
    expect(await xfarm(["user", "list", "Elsewhere.NET"])).toMatchObject({ code: 1, stderr: "xfarm: elsewhere.net is not served here (domains: localhost, example.org)\n" });
    expect(await xfarm(["export", "-d", "Elsewhere.NET"])).toMatchObject({ code: 1, stdout: "", stderr: "xfarm: elsewhere.net is not served here (domains: localhost, example.org)\n" });
    expect((await xfarm(["user", "add", "eve@localhost/res", "x"])).stderr).toMatch(/is not a bare JID/);
    expect(await xfarm(["user", "add", "eve@localhost"], "\n")).toMatchObject({ code: 1, stderr: "xfarm: the password is empty\n" });
  });

  it("changes a password and deletes an account", async () => {
    expect(await xfarm(["user", "passwd", "alice@localhost", "new-pw"])).toMatchObject({
      code: 0,
      stdout: "password changed for alice@localhost\nno running farm reached; no sessions to end\n",
    });
    expect(await passwordWorks("alice@localhost", "new-pw")).toBe(true);
    expect(await passwordWorks("alice@localhost", "pw-a")).toBe(false);
    expect(await xfarm(["user", "del", "alice@localhost"])).toMatchObject({
      code: 0,
      stdout: "deleted alice@localhost\nno running farm reached; no sessions to end\n",
    });
    expect(await xfarm(["user", "del", "alice@localhost"])).toMatchObject({ code: 1, stderr: "xfarm: alice@localhost does not exist\n" });
    expect(await xfarm(["user", "passwd", "nobody@localhost", "x"])).toMatchObject({ code: 1, stderr: "xfarm: nobody@localhost does not exist\n" });
    expect((await xfarm(["user", "list"])).stdout).toBe("bob@example.org\n");
  });

  it("refuses a JID or password that RFC 7622 or SASLprep refuses, and stores the normalized JID", async () => {
    expect((await xfarm(["user", "add", "a\u200Bb@localhost", "x"])).stderr).toMatch(/is not a bare JID/);
    expect((await xfarm(["user", "add", "eve@localhost", "bad\u0007pw"])).stderr).toMatch(/fails SASLprep/);
    expect(await xfarm(["user", "add", "ＺＯË@localhost", "pass\u00A0wörd"])).toMatchObject({ code: 0, stdout: "created zoë@localhost\n" });
    expect(await passwordWorks("zoë@localhost", "pass wörd")).toBe(true);
    expect(await xfarm(["user", "del", "ZOE\u0308@LOCALHOST"])).toMatchObject({ code: 0 });
  });

  it("renames an account and the rosters that hold it; names one stored before JIDs were normalized as it is stored", async () => {
    const store = await openStore(`sqlite:${path.join(dir, "data", "xfarm.db")}`);
    // As an xfarm that only lowercased could have stored it.
    await store.createAccount("ｃarol@localhost", (await store.getCredentials("bob@example.org"))!);
    await store.putRosterItem("bob@example.org", { contact: "ｃarol@localhost", name: null, subscription: "both", askOut: false, pendingIn: false, visible: true, groups: [] });
    await store.close();
    expect(await xfarm(["user", "rename", "ｃarol@localhost", "Caroline@localhost"])).toMatchObject({
      code: 0,
      stdout: "renamed ｃarol@localhost to caroline@localhost\nno running farm reached; no sessions to end\n",
    });
    expect(await xfarm(["user", "rename", "caroline@localhost", "bob@example.org"])).toMatchObject({ code: 1, stderr: "xfarm: caroline@localhost does not exist or bob@example.org does\n" });
    const after = await openStore(`sqlite:${path.join(dir, "data", "xfarm.db")}`);
    expect((await after.getRoster("bob@example.org")).map((i) => i.contact)).toEqual(["caroline@localhost"]);
    await after.close();
    expect(await xfarm(["user", "del", "CAROLINE@localhost"])).toMatchObject({ code: 0 });
  });

  it("answers --help for every subcommand", async () => {
    const subs = [[], ["start"], ["router"], ["sm"], ["c2s"], ["user"], ["user", "add"], ["user", "passwd"], ["user", "del"], ["user", "rename"], ["user", "list"], ["config"]];
    // All at once: each is a process of its own that reads nothing the others write.
    const answers = await Promise.all(subs.map((sub) => xfarm([...sub, "--help"])));
    for (const [i, r] of answers.entries()) {
      expect(r.code, subs[i]!.join(" ")).toBe(0);
      expect(r.stdout, subs[i]!.join(" ")).toMatch(/^Usage: xfarm/);
    }
  });
});

describe("xfarm db", () => {
  it("reports and migrates the schema, and processes refuse a newer one", async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-db-"));
    const cfg = path.join(fresh, "xfarm.toml");
    fs.writeFileSync(cfg, `data_dir = ${JSON.stringify(fresh)}\n[metrics]\nsm_port = 0\n[secrets]\n"sm-1" = "not-used-here"\n`);
    const run = async (args: string[]) => {
      const r = await xfarm(args, undefined, cfg);
      return { code: r.code, out: r.stdout + r.stderr };
    };
    expect(await run(["db", "status"])).toMatchObject({ code: 1, out: expect.stringMatching(/^xfarm: no database at /) });
    expect(fs.existsSync(path.join(fresh, "xfarm.db"))).toBe(false);
    const { default: Database } = await import("better-sqlite3");
    // An empty database, as an admin makes one for the farm.
    new Database(path.join(fresh, "xfarm.db")).close();
    expect((await run(["db", "status"])).out).toMatch(/schema version 0, this xfarm knows \d+: \d+ migration\(s\) to run/);
    expect((await run(["db", "migrate"])).out).toMatch(/schema migrated from version 0 to \d+/);
    expect((await run(["db", "migrate"])).out).toMatch(/schema already at version \d+/);
    expect((await run(["db", "status"])).out).toMatch(/up to date/);
    const db = new Database(path.join(fresh, "xfarm.db"));
    db.prepare(`INSERT INTO schema_version (version, description, applied_at) VALUES (999, 'future', 0)`).run();
    db.close();
    expect((await run(["db", "status"])).out).toMatch(/schema version 999.*NEWER than this xfarm/);
    const sm = await run(["sm"]);
    expect(sm.code).toBe(78);
    expect(JSON.parse(sm.out)).toMatchObject({ level: "fatal", key: "db", msg: expect.stringMatching(/database schema version 999 is newer than this xfarm knows/) });
    fs.rmSync(fresh, { recursive: true, force: true });
  });

  it("migrates stored JIDs to their RFC 7622 form, and leaves accounts that collide for the admin", async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-db-"));
    const cfg = path.join(fresh, "xfarm.toml");
    fs.writeFileSync(cfg, `data_dir = ${JSON.stringify(fresh)}\n`);
    const store = await openStore(`sqlite:${path.join(fresh, "xfarm.db")}`);
    const creds = await deriveCredentials("pw", 64);
    // As an xfarm that only lowercased could have stored them.
    for (const user of ["dave@localhost", "ｄave@localhost", "e\u0301mile@localhost"]) await store.createAccount(user, creds);
    await store.close();

    const first = await xfarm(["db", "migrate"], undefined, cfg);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain("account e\u0301mile@localhost renamed \u00E9mile@localhost\n");
    expect(first.stdout).toContain("REFUSED: dave@localhost, ｄave@localhost are one JID under RFC 7622 (dave@localhost)");
    expect(first.stderr).toBe("xfarm: 1 account(s) need the admin; then run xfarm db migrate again\n");
    expect((await xfarm(["user", "rename", "ｄave@localhost", "david@localhost"], undefined, cfg)).code).toBe(0);
    expect(await xfarm(["db", "migrate"], undefined, cfg)).toMatchObject({ code: 0, stdout: expect.stringContaining("stored JIDs already in their RFC 7622 form\n") });
    expect((await xfarm(["user", "list"], undefined, cfg)).stdout).toBe("dave@localhost\ndavid@localhost\n\u00E9mile@localhost\n");
    fs.rmSync(fresh, { recursive: true, force: true });
  });
});
