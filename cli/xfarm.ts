#!/usr/bin/env node
// The one xfarm command: run the farm or one of its processes, manage users.
// Process code is imported only by the subcommand that runs it.
import { Command } from "commander";
import { annotatedDefaults, type Config } from "../lib/config.js";
import { createLogger, type Logger } from "../lib/log.js";
import { configFailure, failStartup, runProcess } from "../lib/process-lifecycle.js";
import { benchCommand } from "./bench-command.js";
import { configOption, dbOption, loadFound, type LoadConfig } from "./config-option.js";
import { dbCommands } from "./db-commands.js";
import { faultsCommand } from "./faults-command.js";
import { addFarmCommands } from "./farm-commands.js";
import { addPieCommands } from "./pie-commands.js";
import { simCommand } from "./sim-command.js";
import { userCommands } from "./user-commands.js";

const program = new Command("xfarm")
  .description("An XMPP client-to-server connection farm: c2s front ends, a router and session managers over SQL.")
  .addOption(configOption())
  .addOption(dbOption())
  .showHelpAfterError()
  // --db is the db key's environment override, so that the processes `xfarm start` spawns have it too.
  .hook("preAction", (_program, action) => {
    const { db } = action.optsWithGlobals<{ db?: string }>();
    if (db !== undefined) process.env.XFARM_DB = db;
  });

/** The config of --config given after the subcommand, else before it (the program's), else as found. */
const load: LoadConfig = (opts) => loadFound(opts.config ?? program.opts<{ config?: string }>().config);

/**
 * A farm process's config; one that cannot be read stops the process with a
 * fatal log line naming the key, as its other start-up failures do.
 */
function processConfig(role: string): Config {
  process.title = `xfarm ${role}`;
  try {
    return load({}).config;
  } catch (err) {
    const failure = configFailure(err);
    failStartup(createLogger(role), failure.key, failure.message);
  }
}

program
  .command("start")
  .description("run a whole farm on this box: a router, an sm and c2s processes, supervised")
  .action(async () => {
    const config = processConfig("supervisor");
    const { db } = program.opts<{ db?: string }>();
    // Made only to say why the farm ends: the supervisor logs through its own.
    let log: Logger | null = null;
    const logger = () => (log ??= createLogger("supervisor", config.log_level, config.log_format));
    await runProcess("supervisor", logger, async () => {
      try {
        // The sm's module settings are checked here too, so that a bad one stops the farm before it starts.
        (await import("../sm/main.js")).smModules(config);
      } catch (err) {
        throw configFailure(err);
      }
      const { runFarm } = await import("../deploy/supervisor.js");
      await runFarm(config, config.file, db !== undefined ? { XFARM_DB: db } : {});
    });
  });

program
  .command("router")
  .description("run the router process alone")
  .action(async () => (await import("../router/main.js")).runRouter(processConfig("router")));

program
  .command("sm")
  .description("run one session manager process alone")
  .action(async () => (await import("../sm/main.js")).runSm(processConfig("sm")));

const c2s = program
  .command("c2s")
  .description("run one client front end alone (name, ports and router address from the config); `c2s drain` and `c2s undrain` take one out and back")
  .action(async () => (await import("../c2s/main.js")).runC2s(processConfig("c2s")));

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
