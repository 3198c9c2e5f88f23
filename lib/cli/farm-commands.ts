// `xfarm status` and `xfarm c2s drain`: what an admin asks of a running farm.
import type { Command } from "commander";
import type { StatusEntry } from "../link/control.js";
import { adminRequest } from "./admin-link.js";
import { configOption, type LoadConfig } from "./config-option.js";

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

/** The farm as a table: one process a line. */
export function formatStatus(router: string, entries: StatusEntry[], now = Date.now()): string {
  const order = { c2s: 0, sm: 1 } as Record<string, number>;
  const rows = [["NAME", "ROLE", "ADDRESS", "SESSIONS", "CONNS", "LAG", "UPTIME", "STATE"]];
  rows.push([router, "router", "-", "-", "-", "-", "-", "active"]);
  for (const e of [...entries].sort((a, b) => (order[a.role] ?? 9) - (order[b.role] ?? 9) || a.name.localeCompare(b.name))) {
    const info = e.info as { host?: string; port?: number; tlsPort?: number; draining?: boolean; started?: number };
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
      info.draining ? "draining" : "active",
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
      process.stdout.write(opts.json ? JSON.stringify(answer, null, 2) + "\n" : formatStatus(answer.router, answer.entries));
    });

  c2s
    .command("drain")
    .description("make a front end redirect every new client and move its connected clients to the others")
    .argument("<name>", "the front end, e.g. c2s-2")
    .option("--rate <n>", "connected clients moved per second", "50")
    .addOption(configOption())
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      // --config may be parsed by `c2s` itself, which has the same option.
      const opts = cmd.optsWithGlobals<{ config?: string; rate: string }>();
      const rate = Number(opts.rate);
      if (!Number.isInteger(rate) || rate < 1) throw new Error("--rate must be a positive integer");
      const answer = await adminRequest(load(opts).config, { op: "drain", name, rate }, "result");
      if (!answer.ok) throw new Error(answer.error ?? "the router refused");
      process.stdout.write(`${name} is draining: new clients go elsewhere, ${rate} connected clients a second are moved\n`);
    });
}
