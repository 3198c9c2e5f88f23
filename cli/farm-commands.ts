// `xfarm status`, `xfarm c2s drain` and `undrain`: what an admin asks of a running farm.
import type { Command } from "commander";
import type { Config } from "../lib/config.js";
import { DEFAULT_DRAIN_RATE, type ControlMessage, type ProcessLoad, type StatusEntry } from "../lib/link/control.js";
import type { C2sInfo } from "../lib/link/member.js";
import { adminRequest, askEvery, type RouterReply } from "../lib/link/admin-link.js";
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
 * own ports closed at capacity or over c2s.max_lag); no-sm (its ports closed
 * until an sm links).
 */
export function c2sState(e: StatusEntry): string {
  const info = e.info as Partial<C2sInfo>;
  if (info.draining) return isDrained(e) ? "drained" : "draining";
  return info.full ? "full" : info.noSm ? "no-sm" : "active";
}

/**
 * Whether a draining front end has no connection left, by a load report it
 * made while draining: the router keeps the last report (one every 2 s), and
 * one from just before the drain knows nothing of it, however few connections
 * it counted. Such a report carries `drainStarted`; a front end of a version
 * that sends no process figures (no `started` either) is taken at its count.
 */
export function isDrained(e: StatusEntry): boolean {
  const load = e.load;
  if (!load || !(e.info as Partial<C2sInfo>).draining) return false;
  return load.connections === 0 && madeWhileDraining(load);
}

/** Whether a draining front end's report knows of the drain (see isDrained). */
function madeWhileDraining(load: ProcessLoad): boolean {
  return load.drainStarted !== undefined || load.started === undefined;
}

type StatusReply = RouterReply<"status">;

const ROLE_ORDER: Record<string, number> = { router: 0, c2s: 1, sm: 2 };

/** The routers that answer as active: one, but two in a split brain (none during an election). */
export function activeRouters(replies: StatusReply[]): Extract<ControlMessage, { op: "status" }>[] {
  return replies.flatMap((r) => ("answer" in r && r.answer.active !== false ? [r.answer] : []));
}

/** A figure of a load report, or "-" when the process did not send it (an older version, or no report yet). */
function figure<T>(value: T | undefined, show: (v: T) => string): string {
  return value === undefined ? "-" : show(value);
}

function row(e: StatusEntry, state: string, now: number): string[] {
  const info = e.info as Partial<C2sInfo>;
  const load: Partial<ProcessLoad> = e.load ?? {};
  const started = load.started ?? info.started ?? e.linkedAt;
  return [
    e.name,
    e.role,
    // Where it runs: its box's name, else its link's address without the port (which is ephemeral).
    load.host ?? (e.peer.replace(/:\d+$/, "") || "-"),
    figure(load.pid, String),
    state,
    e.role === "router" ? "-" : figure(load.sessions, String),
    e.role === "sm" ? "-" : figure(load.connections, String),
    figure(load.rss, (b) => `${Math.round(b / 2 ** 20)}M`),
    figure(load.cpu, (c) => `${Math.round(c * 100)}%`),
    figure(load.lag, (ms) => `${ms}ms`),
    duration(now - started),
  ];
}

/** A draining front end's progress: connections left, clients moved, the rate and when it should be done. */
export function drainProgress(e: StatusEntry, now = Date.now()): string {
  const info = e.info as Partial<C2sInfo>;
  const rate = info.drainRate ?? DEFAULT_DRAIN_RATE;
  if (!e.load) return `${e.name} draining at ${rate}/s: no load report yet`;
  const { connections, drainStarted, drainMoved } = e.load;
  const elapsed = drainStarted === undefined ? undefined : Math.max(0, now - drainStarted);
  const moved = drainMoved === undefined || elapsed === undefined ? "" : `, ${drainMoved} moved in ${duration(elapsed)}`;
  if (isDrained(e)) return `${e.name} drained: no connection left${moved}`;
  if (!madeWhileDraining(e.load)) return `${e.name} draining at ${rate}/s: no load report since the drain began`;
  // The rate seen so far when there is one: the order's rate is a ceiling the peers' room may keep it under.
  const seen = drainMoved && elapsed && elapsed >= 1_000 ? drainMoved / (elapsed / 1000) : undefined;
  const pace = seen === undefined ? "" : ` (${seen < 10 ? seen.toFixed(1) : Math.round(seen)}/s)`;
  return `${e.name} draining at ${rate}/s: ${connections} connections left${moved}${pace}, ETA ${duration(Math.ceil(connections / (seen ?? rate)) * 1000)}`;
}

/**
 * The farm as every router sees it, one process a line: each router (active,
 * passive, or unreachable at its address), then the active router's linked
 * processes; under the table, each drain's progress and what went wrong.
 */
export function formatStatus(replies: StatusReply[], now = Date.now()): string {
  const rows = [["NAME", "ROLE", "HOST", "PID", "STATE", "SESSIONS", "CONNS", "RSS", "CPU", "LAG", "UPTIME"]];
  const notes: string[] = [];
  for (const r of replies) {
    if ("error" in r) {
      rows.push([r.address, "router", "-", "-", "unreachable", "-", "-", "-", "-", "-", "-"]);
      notes.push(`router at ${r.address}: ${r.error}`);
      continue;
    }
    // A router of an earlier version sends no row of its own: its name and state are all it tells.
    const self = r.answer.self ?? { name: r.answer.router, role: "router", peer: r.address, info: {}, load: null, linkedAt: now, queued: 0 };
    const state = r.answer.active === false ? "passive" : "active";
    rows.push(r.answer.self ? row(self, state, now) : [self.name, "router", "-", "-", state, "-", "-", "-", "-", "-", "-"]);
  }
  const active = activeRouters(replies);
  if (active.length > 1) notes.push(`warning: ${active.map((a) => a.router).join(" and ")} both answer as active; the table is ${active[0]!.router}'s`);
  if (active.length === 0) notes.push("no router answers as active (a takeover may be under way): no farm table to show");
  const entries = [...(active[0]?.entries ?? [])].sort((a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) || a.name.localeCompare(b.name));
  for (const e of entries) rows.push(row(e, e.role === "c2s" ? c2sState(e) : "active", now));
  for (const e of entries) if (e.role === "c2s" && (e.info as Partial<C2sInfo>).draining) notes.push(drainProgress(e, now));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  return [...table, ...(notes.length ? ["", ...notes] : [])].join("\n") + "\n";
}

export function addFarmCommands(program: Command, c2s: Command, load: LoadConfig): void {
  program
    .command("status")
    .description("ask every router of the running farm, and print each process: role, host, PID, state, load, memory, CPU, uptime and drain progress")
    .addOption(configOption())
    .option("--json", "print the active router's answer, with every router's under `routers`, as JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      const replies = await askEvery(load(opts).config, { op: "status-request" }, "status");
      if (replies.every((r) => "error" in r)) {
        throw new Error(`no answer from the router (${replies.map((r) => `${r.address}: ${"error" in r ? r.error : ""}`).join("; ")}); is it running, with the same secrets.admin?`);
      }
      const active = activeRouters(replies)[0];
      process.stdout.write(opts.json ? JSON.stringify({ ...(active ?? { active: false, entries: [] }), routers: replies }, null, 2) + "\n" : formatStatus(replies));
      // Passive routers alone answered: the farm's table is nowhere to be read now.
      if (!active) process.exitCode = 1;
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
    // A front end not linked (restarting), or yet to report since the drain began, is not known to be empty.
    if (e && isDrained(e)) {
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
