// `xfarm c2s`: one client front-end process.
import type { Config } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import { runProcess, stopOnSignals } from "../lib/process-lifecycle.js";
import { describeStore, openStoreAtStart, watchStore } from "../xdb-sql/open-store.js";
import { startC2s } from "./c2s-server.js";

export async function runC2s(config: Config): Promise<void> {
  const log = createLogger(config.c2s.name, config.log_level, config.log_format);
  // The admin renewed the certificate: new handshakes use it, open connections keep theirs.
  // Set first, so that a SIGHUP during start-up is not the default action, an exit.
  let reloadTls = (): void => {};
  process.on("SIGHUP", () => reloadTls());
  await runProcess(config.c2s.name, () => log, async () => {
    const store = await openStoreAtStart(config.db);
    log.info({ store: describeStore(config.db) }, "store open");
    watchStore(store, log);
    const server = await startC2s(config, store, log);
    reloadTls = server.reloadTls;
    stopOnSignals(log, async () => {
      await server.close();
      await store.close();
    });
  });
}
