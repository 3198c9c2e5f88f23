// `xfarm router`: the router process.
import type { Config } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import { stopOnSignals } from "../lib/process-lifecycle.js";
import { Router } from "./router.js";

export async function runRouter(config: Config): Promise<void> {
  const log = createLogger(config.router.name, config.log_level);
  const router = new Router({
    name: config.router.name,
    host: config.router.host,
    port: config.router.port,
    secretOf: (name) => config.secrets[name],
    log,
    maxFrame: config.link.max_frame,
  });
  await router.listen();
  stopOnSignals(log, () => router.close());
}
