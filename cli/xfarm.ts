#!/usr/bin/env node
// The one xfarm command: run the farm or one of its processes, manage users.
// Process code is imported only by the subcommand that runs it.
import fs from "node:fs";
import { Command } from "commander";
import { annotatedDefaults, loadConfig, type Config } from "../lib/config.js";
import { benchCommand } from "./bench-command.js";
import { configOption } from "./config-option.js";
import { dbCommands } from "./db-commands.js";
import { faultsCommand } from "./faults-command.js";
import { addFarmCommands } from "./farm-commands.js";
import { addPieCommands } from "./pie-commands.js";
import { simCommand } from "./sim-command.js";
import { userCommands } from "./user-commands.js";

/** --config, else $XFARM_CONFIG, else ./xfarm.toml when present, else the defaults. */
export function configFile(opt: string | undefined): string | null {
  const f = opt ?? process.env.XFARM_CONFIG ?? (fs.existsSync("xfarm.toml") ? "xfarm.toml" : null);
  if (f && !fs.existsSync(f)) throw new Error(`config file ${f} not found`);
  return f;
}


function load(opts: { config?: string }): { config: Config; file: string | null } {
  const file = configFile(opts.config);
  return { config: loadConfig(file), file };
}

const program = new Command("xfarm")
  .description("An XMPP client-to-server connection farm: c2s front ends, a router and session managers over SQL.")
  .showHelpAfterError();

program
  .command("start")
  .description("run a whole farm on this box: a router, an sm and c2s processes, supervised")
  .addOption(configOption())
  .option("--db <url>", "database URL, e.g. sqlite:./data/xfarm.db (overrides the db key)")
  .action(async (opts: { config?: string; db?: string }) => {
    const env: Record<string, string> = opts.db ? { XFARM_DB: opts.db } : {};
    Object.assign(process.env, env);
    const { config, file } = load(opts);
    // The sm's module settings are checked here too, so that a bad one stops the farm before it starts.
    (await import("../sm/main.js")).smModules(config);
    const { runFarm } = await import("../deploy/supervisor.js");
    await runFarm(config, file, env);
  });

program
  .command("router")
  .description("run the router process alone")
  .addOption(configOption())
  .action(async (opts: { config?: string }) => (await import("../router/main.js")).runRouter(load(opts).config));

program
  .command("sm")
  .description("run one session manager process alone")
  .addOption(configOption())
  .action(async (opts: { config?: string }) => (await import("../sm/main.js")).runSm(load(opts).config));

const c2s = program
  .command("c2s")
  .description("run one client front end alone (name, ports and router address from the config); `c2s drain` and `c2s undrain` take one out and back")
  .addOption(configOption())
  .action(async (opts: { config?: string }) => (await import("../c2s/main.js")).runC2s(load(opts).config));

addFarmCommands(program, c2s, load);

program.addCommand(userCommands(load));
program.addCommand(dbCommands(load));
addPieCommands(program, load);
program.addCommand(simCommand(load));
program.addCommand(benchCommand());
program.addCommand(faultsCommand());

program
  .command("config")
  .description("print every config key with its default and documentation, as a TOML file")
  .action(async () => {
    process.stdout.write(annotatedDefaults((await import("../sm/main.js")).smModuleKeys()));
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`xfarm: ${err.message}\n`);
  process.exit(1);
});
