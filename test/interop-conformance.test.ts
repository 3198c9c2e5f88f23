// A conformance run with Debian's python3-slixmpp against a farm on its
// default settings: every extension a modern client looks for is either
// advertised and works, or not advertised at all. The README's table of
// supported XEPs is checked against the run: a row there must pass, an
// extension missing there must not be advertised, and every test a row names
// exists and speaks of that XEP.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";

// Debian's interpreter, where python3-slixmpp installs (not a pyenv one on PATH).
const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./interop/slix_conformance.py", import.meta.url));
const README = fileURLToPath(new URL("../README.md", import.meta.url));

interface Check {
  xep: string;
  name: string;
  result: "pass" | "skip" | "fail";
  detail: string;
}

interface Row {
  xep: string;
  tests: string[];
}

/** The rows of the README's "Supported XEPs" table: the XEP's number and the tests it names. */
function supportedXeps(): Row[] {
  const text = fs.readFileSync(README, "utf8");
  const section = text.split(/^## Supported XEPs$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error("README.md has no '## Supported XEPs' section");
  const rows: Row[] = [];
  for (const line of section.split("\n")) {
    const xep = /^\| \[XEP-(\d{4})\]/.exec(line)?.[1];
    if (!xep) continue;
    rows.push({ xep, tests: [...line.matchAll(/`(test\/[^`]+)`/g)].map((m) => m[1]!) });
  }
  return rows;
}

/** Runs the conformance script once; resolves with its checks. */
function conformanceRun(port: number, jid: string, password: string): Promise<Check[]> {
  return new Promise((resolve, reject) => {
    const py = spawn(PYTHON, [SCRIPT, "--port", String(port), "--jid", jid, "--password", password, "--ca", process.env.XFARM_TEST_CERT!]);
    const checks: Check[] = [];
    let stderr = "";
    py.stderr.on("data", (d) => (stderr += d));
    readline.createInterface({ input: py.stdout }).on("line", (line) => {
      const parsed = JSON.parse(line) as Check | { done: true; error?: string };
      if (!("done" in parsed)) return void checks.push(parsed);
      if (parsed.error) reject(new Error(`conformance run broke: ${parsed.error}; stderr: ${stderr}`));
      else resolve(checks);
    });
    py.on("exit", (code) => reject(new Error(`conformance script exited (${code}) before it finished; stderr: ${stderr}`)));
  });
}

describe("conformance run (slixmpp) against the default farm", () => {
  let farm: Farm;

  beforeAll(async () => {
    const probe = spawnSync(PYTHON, ["-c", "import slixmpp"]);
    if (probe.status !== 0) throw new Error("python3-slixmpp is not installed: apt-get install python3-slixmpp (.ci/run does)");
    // Default settings, except contact addresses (XEP-0157), which are advertised only once an admin sets one.
    farm = await Farm.create({ c2sCount: 1, modules: { contact_info: { admin_addresses: ["xmpp:admin@localhost"], abuse_addresses: ["mailto:abuse@localhost"] } } });
    await farm.start();
    await farm.addUser("conformance@localhost", "conformance-pw");
  });

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("every extension in the README's table works, and nothing else is advertised", async () => {
    const checks = await conformanceRun(farm.c2sPorts[0]!.port, "conformance@localhost/run", "conformance-pw");
    const rows = supportedXeps();
    const listed = new Set(rows.map((r) => r.xep));
    expect(checks.filter((c) => c.result === "fail")).toEqual([]);
    for (const check of checks) {
      expect({ xep: check.xep, name: check.name, result: check.result }).toEqual({ xep: check.xep, name: check.name, result: listed.has(check.xep) ? "pass" : "skip" });
    }
  });

  it("every test the table names exists and speaks of its XEP", () => {
    const rows = supportedXeps();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.tests, `XEP-${row.xep} names no test`).not.toEqual([]);
      for (const test of row.tests) {
        const file = fileURLToPath(new URL(`../${test}`, import.meta.url));
        expect(fs.existsSync(file), `${test} (XEP-${row.xep}) does not exist`).toBe(true);
        expect(fs.readFileSync(file, "utf8"), `${test} never mentions XEP-${row.xep}`).toMatch(new RegExp(`XEP-?${row.xep}|xep_${row.xep}`, "i"));
      }
    }
  });
});
