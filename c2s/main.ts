// `xfarm c2s`: one client front-end process.
import type { Config } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import type { NotReady } from "../lib/metrics/health-server.js";
import { serveProcessEndpoint } from "../lib/metrics/process-endpoint.js";
import { releaseIdleHeap } from "../lib/idle-heap.js";
import { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import { storeMetrics } from "../lib/metrics/store-metrics.js";
import { runProcess, stopOnSignals } from "../lib/process-lifecycle.js";
import { instrumentStore } from "../xdb-sql/instrumented-store.js";
import { describeStore, openStoreAtStart, watchStore } from "../xdb-sql/open-store.js";
import { startC2s } from "./c2s-server.js";

export async function runC2s(config: Config): Promise<void> {
  const log = createLogger(config.c2s.name, config.log_level, config.log_format);
  // The admin renewed the certificate: new handshakes use it, open connections keep theirs.
  // Set first, so that a SIGHUP during start-up is not the default action, an exit.
  let reloadTls = (): void => {};
  process.on("SIGHUP", () => reloadTls());
  await runProcess(config.c2s.name, () => log, async () => {
    const metrics = new ProcessMetrics("c2s", config.c2s.name);
    // Served first, so that /healthz answers and /readyz says why while the rest starts.
    let readiness = (): NotReady | null => ({ cause: "starting", reason: "starting" });
    await serveProcessEndpoint(config, "c2s", metrics, () => readiness(), log);
    releaseIdleHeap(config.idle_gc, log, metrics);
    const store = instrumentStore(await openStoreAtStart(config.db), storeMetrics(metrics));
    log.info({ store: describeStore(config.db) }, "store open");
    const reachable = watchStore(store, log);
    const server = await startC2s(config, store, log, metrics);
    readiness = () => (!server.linked ? { cause: "link", reason: "not linked to the router" } : !reachable() ? { cause: "store", reason: "database unreachable" } : null);
    reloadTls = server.reloadTls;
    stopOnSignals(log, async () => {
      await server.close();
      await store.close();
    });
  });
}
