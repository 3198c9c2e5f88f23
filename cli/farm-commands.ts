// `xfarm status`, `xfarm c2s drain` and `undrain`: what an admin asks of a running farm.
import type { Command } from "commander";
import type { Config } from "../lib/config.js";
import { DEFAULT_DRAIN_RATE, type StatusEntry } from "../lib/link/control.js";
import type { C2sInfo } from "../lib/link/member.js";
import { adminRequest } from "../lib/link/admin-link.js";
import { configOption, type LoadConfig } from "./config-option.js";

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** How often `drain --wait` asks the router how far the drain is. */
const WAIT_POLL_MS = 1_000;

/**
 * A front end's state: active; draining (ordered to, clients left); drained
 * (draining and no connection left, held XEP-0198 sessions counted); full (its
 * own ports closed at capacity or over c2s.max_lag).
 */
export function c2sState(e: StatusEntry): string {
  const info = e.info as Partial<C2sInfo>;
  if (info.draining) return e.load && e.load.connections === 0 ? "drained" : "draining";
  return info.full ? "full" : "active";
}

/** The farm as a table: one process a line. */
export function formatStatus(router: string, entries: StatusEntry[], now = Date.now(), active = true): string {
  const order = { c2s: 0, sm: 1 } as Record<string, number>;
  const rows = [["NAME", "ROLE", "ADDRESS", "SESSIONS", "CONNS", "LAG", "UPTIME", "STATE"]];
  rows.push([router, "router", "-", "-", "-", "-", "-", active ? "active" : "passive"]);
  for (const e of [...entries].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || a.name.localeCompare(b.name))) {
    const info = e.info as Partial<C2sInfo>;
    const address = e.role === "c2s" ? `${info.host}:${info.port}${info.tlsPort ? `/${info.tlsPort}` : ""}` : e.peer;
    const up = info.started ? duration(now - info.started) : duration(now - e.linkedAt);
    rows.push([
      e.name,
      e.role,
      address,
      e.load ? String(e.load.sessions) : "-",
      e.load ? String(e.load.connections) : "-",
      e.load ? `${e.load.lag}ms` : "-",
      up,
      e.role === "c2s" ? c2sState(e) : "active",
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

export function addFarmCommands(program: Command, c2s: Command, load: LoadConfig): void {
  program
    .command("status")
    .description("print every process of the running farm: role, address, load, uptime and state")
    .addOption(configOption())
    .option("--json", "print the router's answer as JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      const answer = await adminRequest(load(opts).config, { op: "status-request" }, "status");
      process.stdout.write(opts.json ? JSON.stringify(answer, null, 2) + "\n" : formatStatus(answer.router, answer.entries, Date.now(), answer.active !== false));
    });

  c2s
    .command("drain")
    .description(
      "drain a front end: it closes its client ports, redirects clients still logging in and moves its connected clients " +
        "to the others, N a second; it stays drained, restarts included, until `xfarm c2s undrain`",
    )
    .argument("<name>", "the front end, e.g. c2s-2")
    .option("--rate <n>", "connected clients moved per second", String(DEFAULT_DRAIN_RATE))
    .option("--wait", "print its sessions and connections left once a second; exit 0 once it has no connection left")
    .option("--timeout <seconds>", "with --wait: give up after this long, with exit code 1 (default: wait as long as it takes)")
    .addOption(configOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      // --config may be parsed by `c2s` itself, which has the same option.
      const opts = cmd.optsWithGlobals<{ config?: string; rate: string; wait?: boolean; timeout?: string }>();
      const rate = Number(opts.rate);
      if (!Number.isInteger(rate) || rate < 1) throw new Error("--rate must be a positive integer");
      const timeout = opts.timeout === undefined ? Infinity : Number(opts.timeout);
      if (!(timeout > 0)) throw new Error("--timeout must be a positive number of seconds");
      const config = load(opts).config;
      const answer = await adminRequest(config, { op: "drain", name, rate }, "result");
      if (!answer.ok) throw new Error(answer.error ?? "the router refused");
      process.stdout.write(`${name} is draining: its client ports are closed, new clients go elsewhere, ${rate} connected clients a second are moved\n`);
      const status = await adminRequest(config, { op: "status-request" }, "status");
      const takers = status.entries.filter((e) => e.role === "c2s" && e.name !== name && e.load && c2sState(e) === "active");
      if (takers.length === 0) process.stderr.write(`warning: no other front end takes clients now; ${name}'s connected clients stay until one does\n`);
      if (opts.wait) await waitDrained(config, name, timeout * 1000);
    });

  c2s
    .command("undrain")
    .description("put a drained front end back: it opens its client ports and takes clients again")
    .argument("<name>", "the front end, e.g. c2s-2")
    .addOption(configOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ config?: string }>();
      const answer = await adminRequest(load(opts).config, { op: "undrain", name }, "result");
      if (!answer.ok) throw new Error(answer.error ?? "the router refused");
      process.stdout.write(`${name} is no longer drained: it takes clients again\n`);
    });
}

/**
 * Prints how many sessions and connections the front end has left, once a
 * second (on a terminal, over the same line), until it has none: then
 * returns; throws at the timeout.
 */
async function waitDrained(config: Config, name: string, timeoutMs: number): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const start = Date.now();
  let line = "";
  const show = (text: string) => {
    line = text;
    process.stdout.write(tty ? `\r${text}\x1b[K` : `${text}\n`);
  };
  for (;;) {
    const status = await adminRequest(config, { op: "status-request" }, "status");
    const e = status.entries.find((x) => x.role === "c2s" && x.name === name);
    // A front end not linked (restarting), or linked and yet to report, is not known to be empty.
    if (e?.load && (e.info as Partial<C2sInfo>).draining && e.load.connections === 0) {
      if (tty && line) process.stdout.write("\n");
      process.stdout.write(`${name} is drained: no connection left\n`);
      return;
    }
    const elapsed = Math.round((Date.now() - start) / 1000);
    show(
      !e
        ? `${name}: not linked to the router (restarting?), ${elapsed}s`
        : e.load
          ? `${name}: ${e.load.sessions} sessions, ${e.load.connections} connections left, ${elapsed}s`
          : `${name}: linked, no load report yet, ${elapsed}s`,
    );
    if (Date.now() - start >= timeoutMs) {
      if (tty) process.stdout.write("\n");
      throw new Error(`${name} still has connections after ${timeoutMs / 1000} s (${line})`);
    }
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}
