// What a farm process prints: JSON lines with the level by name and an ISO
// time when piped, pino-pretty's lines on a terminal (log_format "auto"),
// JSON on a terminal too with log_format "json"; and its title in `ps`.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePortBase } from "../sim/free-ports.js";
import { CLI } from "../sim/local-farm.js";
import { runCommand } from "../sim/run-command.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-log-format-"));

/** A config whose c2s cannot start: its certificate is not there. */
function failingConfig(name: string, logFormat?: string): string {
  const f = path.join(dir, `${name}.toml`);
  fs.writeFileSync(
    f,
    `data_dir = ${JSON.stringify(path.join(dir, name))}\n${logFormat ? `log_format = "${logFormat}"\n` : ""}[c2s]\ntls_cert = "/nowhere.crt"\ntls_key = "/nowhere.key"\n[secrets]\n"c2s-1" = "c"\n`,
  );
  return f;
}

/** Runs a command under script(1), on a terminal; resolves with what the terminal showed, colours taken out. */
async function onTerminal(command: string): Promise<{ code: number | null; out: string }> {
  const { code, stdout } = await runCommand("script", ["-qec", command, "/dev/null"]);
  return { code, out: stdout.replace(/\x1b\[[0-9;]*m/g, "") };
}

const LOG_MODULE = fileURLToPath(new URL("../dist/lib/log.js", import.meta.url));

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("log lines", () => {
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("are readable on a terminal, and JSON there with log_format json", async () => {
    const pretty = await onTerminal(`${process.execPath} ${CLI} c2s --config ${failingConfig("pretty")}`);
    expect(pretty.code).toBe(78);
    expect(pretty.out).toMatch(/FATAL.*cannot read the certificate \/nowhere\.crt/);
    expect(pretty.out).toMatch(/key: "c2s\.tls_cert"/);
    expect(pretty.out).not.toContain('"level"');

    const json = await onTerminal(`${process.execPath} ${CLI} c2s --config ${failingConfig("json", "json")}`);
    expect(json.code).toBe(78);
    const lines = json.out.split(/\r?\n/).filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toMatchObject({ level: "fatal", key: "c2s.tls_cert", proc: "c2s-1" });
  });

  // Written asynchronously, a line still on libuv's threads when the process
  // exits (a fatal start-up failure) came after the lines flushed at exit, or
  // never: once in a clean clone the fatal line above was not the last.
  it("are on stdout when the log call returns, before whatever the process writes next", async () => {
    const script = `import { writeSync } from "node:fs"; const { createLogger } = await import(${JSON.stringify(LOG_MODULE)}); const log = createLogger("x", "info", "json"); for (let i = 0; i < 3; i++) { log.info({ i }, "line"); writeSync(1, "after " + i + "\\n"); } log.fatal("the end"); process.exit(78);`;
    const { code, stdout } = await runCommand(process.execPath, ["--input-type=module", "-e", script]);
    expect(code).toBe(78);
    const lines = stdout.split("\n").filter((l) => l !== "");
    expect(lines.map((l) => (l.startsWith("{") ? (JSON.parse(l) as { msg: string }).msg : l))).toEqual(["line", "after 0", "line", "after 1", "line", "after 2", "the end"]);
  });

  it("are JSON when piped, the level by name and the time in ISO 8601; the process is titled by its name", async () => {
    const port = await freePortBase([0]);
    const f = path.join(dir, "router.toml");
    fs.writeFileSync(f, `data_dir = ${JSON.stringify(path.join(dir, "router"))}\n[router]\nname = "router-7"\nport = ${port}\ncomponent_port = 0\n[console]\nport = 0\n[metrics]\nrouter_port = 0\n`);
    const p = spawn(process.execPath, [CLI, "router", "--config", f], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stderr!.on("data", (d) => (stderr += d));
    const closed = new Promise((r) => p.on("close", r));
    await new Promise<void>((resolve) =>
      p.stdout!.on("data", (d) => {
        stdout += d;
        if (stdout.includes("router listening for component links")) resolve();
      }),
    );
    expect(fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replace(/\0+$/, "")).toBe("xfarm router-7");
    p.kill("SIGTERM");
    await closed;
    const lines = stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ level: "info", msg: "router listening for component links", proc: "router-7", port });
    for (const l of lines) expect(l).toMatchObject({ level: expect.stringMatching(/^[a-z]+$/), time: expect.stringMatching(ISO_TIME) });
    expect(stderr).toBe("");
  });
});
