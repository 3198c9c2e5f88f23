// `xfarm sim`: the bundled load generator (sim/, docs/sim.md). Drives any
// XMPP server on this machine (by default the farm its config describes,
// sim/config-target.ts) from a scenario file or flags, prints live
// progress and a summary, and writes the results as JSON and as an HTML
// report. With --create-accounts it makes the scenario's accounts in
// xfarm's store (or Prosody's data directory) instead, and exits; with
// --report it renders the HTML report of an earlier run's JSON.
import fs from "node:fs";
import { Command, Option } from "commander";
import type { SimFlags } from "../sim/flags.js";
import type { Security } from "../sim/scenario.js";
import { configOption, type LoadConfig } from "./config-option.js";

interface SimCliOptions {
  config?: string;
  out?: string;
  html?: string;
  report?: string;
  quiet?: boolean;
  progress?: string;
  createAccounts?: boolean;
  db?: string;
  iterations?: string;
  prosodyData?: string;
  prosodyPlain?: boolean;
  print?: boolean;
  [flag: string]: unknown;
}

export function simCommand(load: LoadConfig): Command {
  return new Command("sim")
    .description("the client simulator: load-test an XMPP server on this machine (xfarm, Prosody, ejabberd); see docs/sim.md")
    .argument("[scenario]", "scenario file (TOML); flags override its server, users, arrival, session and run keys")
    .option("--host <host>", "server address (loopback only: 127.0.0.0/8, ::1, localhost); default: the config's c2s.host")
    .option("--port <ports>", "server port, or ports (5222,5322): user k connects first to the k-th, round robin (see --spread); default: the ports of the config's front ends (c2s.port or c2s.tls_port, start.c2s_count, start.port_step)")
    .addOption(new Option("--spread <how>", "how users pick the port they connect to first: turn (round robin) or random (seeded by --seed, as SRV records spread clients)").choices(["turn", "random"]))
    .option("--domain <domain>", "XMPP domain of the accounts; default: the config's first domain")
    .addOption(new Option("--security <mode>", "none, starttls or direct (TLS from the first byte)").choices(["none", "starttls", "direct"]))
    .addOption(new Option("--mechanism <mech>", "SASL mechanism").choices(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]))
    .option("--ca <file>", "PEM CA to verify the server's certificate (default: not verified)")
    .option("--sources <list>", "local addresses to connect from, e.g. 127.0.0.2-127.0.0.9,127.0.1.0/28")
    .option("--users <n>", "users (sessions) in the run")
    .option("--first <n>", "number of the first user")
    .option("--name <pattern>", "user name pattern, %d the number (user%d)")
    .option("--password <pattern>", "password pattern (pass%d), or one password for all")
    .option("--accounts <n>", "accounts that exist (offline targets are picked among them)")
    .option("--rate <n>", "arrivals per second (one phase)")
    .option("--ramp <seconds>", "length of that phase (default: users / rate)")
    .option("--arrival <phases>", 'arrival phases RATExSECONDS, e.g. "100x10,500x20"')
    .addOption(new Option("--interarrival <law>", "uniform or poisson arrivals").choices(["uniform", "poisson"]))
    .option("--seed <n>", "seed for Poisson arrivals, chat targets, random think times and --spread random")
    .option("--workers <n>", "worker processes (0: run in this process)")
    .option("--duration <seconds>", "hard limit on the run's length")
    .option("--keepalive <seconds>", "whitespace keepalive after this much silence (0: none)")
    .option("--resource <name>", "resource to ask for at bind")
    .option("--login-timeout <seconds>", "give up a login after this long")
    .option("--reconnect <seconds>", "after a lost session, reconnect (through the --port list) after a random wait of 0 … this many seconds, instead of giving up")
    .addOption(
      new Option("--redirects <mode>", "follow: connect where see-other-host says; ignore: reconnect through the --port list instead, as Smack, Conversations, Gajim, libstrophe do, after a redirect or any lost connection")
        .choices(["follow", "ignore"]),
    )
    .option("--sm", "enable XEP-0198 stream management after login")
    .option("--sm-resume", "--sm with resumption: a lost session is resumed (on any front end), unacknowledged stanzas sent again")
    .option("--no-roster", "do not fetch the roster after login")
    .option("--no-presence", "do not send initial presence")
    .option("--chat-rate <n>", "chat messages per second per user (to random online users)")
    .option("--chat-total-rate <n>", "chat messages per second, all users together")
    .option("--chat-duration <seconds>", "how long each user chats (default 10)")
    .option("--chat-count <n>", "messages each user sends")
    .option("--chat-size <bytes>", "message body size (default 100)")
    .addOption(new Option("--chat-to <who>", "online users, or offline accounts").choices(["online", "offline"]))
    .option("--hold <seconds>", "stay connected this long after the other actions, then close")
    .option("-o, --out <file>", "write the results as JSON here")
    .option("--html <file>", "write the results as an HTML report here (summary, tables, charts; one self-contained file)")
    .option("--report <results>", "render the HTML report (--html) of an earlier run's JSON results (--out) and exit")
    .option("-q, --quiet", "no progress lines")
    .addOption(new Option("--progress <mode>", "progress on stderr").choices(["auto", "tty", "lines", "none"]).default("auto"))
    .option("--print", "print the resolved scenario as JSON and exit")
    .option("--create-accounts", "create the scenario's accounts (users.first … +users.accounts) and exit: in xfarm's store, or with --prosody-data in Prosody's")
    .addOption(configOption())
    .option("--db <url>", "with --create-accounts: the store URL (default: the config's db)")
    .option("--iterations <n>", "with --create-accounts: PBKDF2 iterations of the keys (xfarm: c2s.scram_iterations; Prosody: 10000)")
    .option("--prosody-data <dir>", "with --create-accounts: write Prosody account files under this data_path")
    .option("--prosody-plain", "with --prosody-data: plain passwords (authentication = internal_plain)")
    .action(async (file: string | undefined, opts: SimCliOptions) => {
      if (opts.report) return reportFromJson(opts.report, opts.html);
      const { readScenarioFile } = await import("../sim/scenario.js");
      const { applyFlags } = await import("../sim/flags.js");
      const { configTarget, withTarget } = await import("../sim/config-target.js");
      let base: import("../sim/scenario.js").Scenario | null = null;
      let fileHasActions = false;
      let serverKeys: string[] = [];
      if (file) {
        ({ scenario: base, hasActions: fileHasActions, serverKeys } = readScenarioFile(file));
      }
      // The farm the config describes, where neither the flags nor the file name a server.
      const security = opts.security ? (String(opts.security).toLowerCase() as Security) : (base?.server.security ?? "starttls");
      const flags = withTarget(opts as SimFlags, serverKeys, security, configTarget(load({ config: opts.config }).config));
      const sc = applyFlags(base, flags, fileHasActions);
      if (opts.print) {
        process.stdout.write(JSON.stringify(sc, null, 2) + "\n");
        return;
      }
      if (opts.createAccounts) return createAccounts(sc, opts, load);
      const { runSim } = await import("../sim/runner.js");
      const { summaryTable } = await import("../sim/results.js");
      const progress = opts.quiet ? "none" : (opts.progress as "auto" | "tty" | "lines" | "none");
      const results = await runSim(sc, { progress });
      if (opts.out) fs.writeFileSync(opts.out, JSON.stringify(results, null, 1) + "\n");
      // After the JSON: should the report fail, --report can redo it from that.
      if (opts.html) fs.writeFileSync(opts.html, (await import("../sim/report-html.js")).renderHtmlReport(results));
      process.stdout.write(summaryTable(results));
      if (opts.out) process.stdout.write(`results: ${opts.out}\n`);
      if (opts.html) process.stdout.write(`report: ${opts.html}\n`);
      if (results.ended_by === "error") process.exitCode = 2;
    });
}

async function reportFromJson(jsonFile: string, htmlFile: string | undefined): Promise<void> {
  if (!htmlFile) throw new Error("--report needs --html FILE: where to write the report");
  const { RESULTS_FORMAT } = await import("../sim/results.js");
  const { renderHtmlReport } = await import("../sim/report-html.js");
  const results = JSON.parse(fs.readFileSync(jsonFile, "utf8")) as import("../sim/results.js").SimResults;
  if (results.format !== RESULTS_FORMAT) throw new Error(`${jsonFile}: not xfarm sim results (format ${JSON.stringify(results.format)}, expected ${RESULTS_FORMAT})`);
  fs.writeFileSync(htmlFile, renderHtmlReport(results));
  process.stdout.write(`report: ${htmlFile}\n`);
}

async function createAccounts(
  sc: import("../sim/scenario.js").Scenario,
  opts: SimCliOptions,
  load: LoadConfig,
): Promise<void> {
  const { accountRange, createXfarmAccounts, writeProsodyAccounts } = await import("../sim/accounts.js");
  const range = accountRange(sc);
  const iterations = opts.iterations !== undefined ? Number(opts.iterations) : undefined;
  if (iterations !== undefined && (!Number.isInteger(iterations) || iterations < 1)) throw new Error("--iterations must be a positive integer");
  const t0 = performance.now();
  const what = `${range.name.replace("%d", String(range.first))} … ${range.name.replace("%d", String(range.first + range.count - 1))}@${sc.server.domain}`;
  let created: number;
  if (opts.prosodyData) {
    created = await writeProsodyAccounts(opts.prosodyData, sc.server.domain, range, { hashed: !opts.prosodyPlain, iterations });
  } else {
    const config = opts.db ? null : load({ config: opts.config }).config;
    const db = opts.db ?? config!.db;
    const tty = process.stderr.isTTY;
    created = await createXfarmAccounts(db, sc.server.domain, range, {
      iterations: iterations ?? config?.c2s.scram_iterations,
      onProgress: (done, total) => {
        if (tty) process.stderr.write(`\r${done}/${total} accounts`);
      },
    });
    if (tty) process.stderr.write("\n");
  }
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`${created} accounts created (${range.count - created} existed): ${what}, in ${secs.toFixed(1)} s\n`);
}
