// The --config option every xfarm subcommand takes, and how a command gets its config.
import { Option } from "commander";
import type { Config } from "../lib/config.js";

export function configOption(): Option {
  return new Option("-c, --config <file>", "config file (TOML); default $XFARM_CONFIG or ./xfarm.toml");
}

/** Reads the config a command's options name (xfarm.ts's load). */
export type LoadConfig = (opts: { config?: string }) => { config: Config };
