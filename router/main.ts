// `xfarm router`: the router process.
import { xmlLimits, type Config } from "../lib/config.js";
import { createLogger, type Logger } from "../lib/log.js";
import type { NotReady } from "../lib/metrics/health-server.js";
import { serveProcessEndpoint } from "../lib/metrics/process-endpoint.js";
import { releaseIdleHeap } from "../lib/idle-heap.js";
import { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import { storeMetrics } from "../lib/metrics/store-metrics.js";
import { StartupFailure, runProcess, stopOnSignals } from "../lib/process-lifecycle.js";
import { instrumentStore } from "../xdb-sql/instrumented-store.js";
import { describeStore, openStoreAtStart, watchStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";
import { ConsoleServer } from "./console/console-server.js";
import { listenExternalComponents } from "./external-components.js";
import { RouterPair } from "./router-pair.js";
import { Router } from "./router.js";
import { routerMetrics } from "./router-metrics.js";

export async function runRouter(config: Config): Promise<void> {
  const log = createLogger(config.router.name, config.log_level, config.log_format);
  await runProcess(config.router.name, () => log, () => startRouter(config, log));
}

async function startRouter(config: Config, log: Logger): Promise<void> {
  const metrics = new ProcessMetrics("router", config.router.name);
  // Served first, so that /healthz answers and /readyz says why while the rest starts.
  let readiness = (): NotReady | null => ({ cause: "starting", reason: "starting" });
  await serveProcessEndpoint(config, "router", metrics, () => readiness(), log);
  releaseIdleHeap(config.idle_gc, log, metrics);
  const router = new Router({
    name: config.router.name,
    host: config.router.host,
    port: config.router.port,
    secretOf: (name) => config.secrets.get(name),
    log,
    maxFrame: config.link.max_frame,
    highWater: config.link.high_water,
    maxAuthFrame: config.link.max_auth_frame,
    domains: config.domains,
    db: describeStore(config.db),
  });
  let pair: RouterPair | null = null;
  // The router opens the database only for the lease that arbitrates which router of a pair leads (protocol §1.9),
  // and for the admin console's accounts.
  let store: Store | null = null;
  let reachable = () => true;
  if (config.router.peer || config.console.port) {
    store = instrumentStore(await openStoreAtStart(config.db), storeMetrics(metrics));
    log.info({ store: describeStore(config.db) }, config.router.peer ? "store open, for the router lease" : "store open, for the admin console");
    reachable = watchStore(store, log);
  }
  if (config.router.peer) {
    const secret = config.secrets.get(config.router.name);
    if (!secret) throw new StartupFailure(`secrets."${config.router.name}"`, `no link secret for router "${config.router.name}": set secrets."${config.router.name}" on both routers`);
    pair = new RouterPair({
      router,
      name: config.router.name,
      peer: config.router.peer,
      secret,
      electionMs: config.router.election * 1000,
      leaseMs: config.router.lease * 1000,
      store: store!,
      log,
    });
    pair.start();
  }
  await router.listen();
  const adminConsole = config.console.port ? new ConsoleServer({ config, router, entries: () => router.statusEntries(), store: store!, log }) : null;
  await adminConsole?.listen();
  routerMetrics(metrics, router);
  readiness = () =>
    !router.listeningForLinks
      ? { cause: "starting", reason: "not listening for links" }
      : pair && !pair.settled
        ? { cause: "link", reason: "neither active nor linked to its pair peer" }
        : !reachable()
          ? { cause: "store", reason: "database unreachable" }
          : null;
  const components = config.router.component_port
    ? await listenExternalComponents({
        host: config.router.component_host,
        port: config.router.component_port,
        secretOf: (domain) => config.components.get(domain),
        maxUnread: config.link.high_water,
        limits: {
          unauthenticated: xmlLimits(config.xml, config.c2s.max_stanza_size_unauthenticated),
          authenticated: xmlLimits(config.xml, config.c2s.max_stanza_size),
        },
        log,
        attach: (domain, send) => router.attachExternal(domain, send),
        detach: (domain) => router.detachExternal(domain),
        route: (domain, stanza, xml) => router.routeFromExternal(domain, stanza, xml),
      })
    : null;
  stopOnSignals(log, async () => {
    await pair?.stop();
    await adminConsole?.close();
    await new Promise<void>((resolve) => (components ? components.close(() => resolve()) : resolve()));
    await router.close();
    await store?.close();
  });
}
