// The database an account or schema command touches: the running farm's, or
// none. A command run from the wrong directory, or with another config, must
// not write accounts no farm reads, nor make an empty database.
import { routerAddresses, type Config } from "../lib/config.js";
import { ADMIN_NAME, adminRequest } from "../lib/link/admin-link.js";
import { AUTH_FAILED } from "../lib/link/auth.js";
import { connectStore, describeStore, openStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";
import { configPlaces } from "./config-option.js";

/** How long to wait for a router that accepted the link: a running farm answers `describe` at once. */
const DESCRIBE_TIMEOUT_MS = 3_000;

/**
 * Throws, naming both, when a farm answers at the config's router addresses
 * and uses another database, or refuses this config's admin secret (it is
 * another farm's). No farm answering is no objection: the farm may be down.
 */
export async function checkFarmDatabase(config: Config): Promise<void> {
  const mine = describeStore(config.db);
  // Without an admin secret no farm of this config ever ran: there is none to ask.
  if (!config.secrets.get(ADMIN_NAME)) return;
  const farm = await adminRequest(config, { op: "describe" }, "farm", DESCRIBE_TIMEOUT_MS).catch((err: Error) => {
    if (err.message.includes(AUTH_FAILED)) {
      throw new Error(`the router at ${routerAddresses(config).join(", ")} refuses this config's admin secret: it runs another farm than ${config.file ?? "the defaults"} describes; give its config (--config)`);
    }
    return null;
  });
  if (farm?.db !== undefined && farm.db !== mine) {
    throw new Error(`the running farm (router ${farm.router}) uses the database ${farm.db}, not ${mine}: give the farm's config (--config) or its database (--db)`);
  }
}

/**
 * The farm's store, an existing one only, after checkFarmDatabase; `connect`
 * leaves its schema alone (`xfarm db`). With no config found, the refusal
 * names the places searched.
 */
export async function openFarmStore(config: Config, how: "open" | "connect" = "open"): Promise<Store> {
  await checkFarmDatabase(config);
  try {
    return await (how === "open" ? openStore : connectStore)(config.db, { existing: true });
  } catch (err) {
    if (config.file !== null) throw err;
    throw new Error(`no config file found (looked at ${configPlaces().join(", ")}), and ${(err as Error).message}`);
  }
}
