// The global options every xfarm subcommand honours (--config, --db), where a
// command finds the farm's config file, and how it gets its config.
import fs from "node:fs";
import { Option } from "commander";
import { loadConfig, type Config } from "../lib/config.js";

export function configOption(): Option {
  return new Option("-c, --config <file>", "the farm's config file (TOML); default $XFARM_CONFIG, ./xfarm.toml, /etc/xfarm/xfarm.toml");
}

export function dbOption(): Option {
  return new Option("--db <url>", "database URL, e.g. sqlite:./data/xfarm.db or mysql://… (overrides the db key)");
}

/** Where a system-wide install keeps its config; XFARM_SYSTEM_CONFIG moves it, for tests and packagers. */
export function systemConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.XFARM_SYSTEM_CONFIG || "/etc/xfarm/xfarm.toml";
}

/** The places looked in, in order, as an admin is told when none held a config. */
export function configPlaces(env: NodeJS.ProcessEnv = process.env): string[] {
  return ["--config", "$XFARM_CONFIG", "./xfarm.toml", systemConfigFile(env)];
}

/**
 * The config file: --config, else $XFARM_CONFIG (both must exist), else
 * ./xfarm.toml, else the system one, when present; null: none, the defaults.
 */
export function findConfigFile(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  const named = given ?? (env.XFARM_CONFIG || undefined);
  if (named !== undefined) {
    if (!fs.existsSync(named)) throw new Error(`config file ${named} not found`);
    return named;
  }
  return ["xfarm.toml", systemConfigFile(env)].find((f) => fs.existsSync(f)) ?? null;
}

/** Reads the config the options name (xfarm.ts's load): `config.file` is null when none was found. */
export type LoadConfig = (opts: { config?: string }) => { config: Config; file: string | null };

export function loadFound(given: string | undefined): { config: Config; file: string | null } {
  const file = findConfigFile(given);
  return { config: loadConfig(file), file };
}
