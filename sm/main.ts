// `xfarm sm`: one session manager process, wired to its router link.
import type { Config, KeySpec } from "../lib/config.js";
import { LinkClient } from "../lib/link/link-client.js";
import { createLogger, type Logger } from "../lib/log.js";
import type { NotReady } from "../lib/metrics/health-server.js";
import { linkMetrics } from "../lib/metrics/link-metrics.js";
import { serveProcessEndpoint } from "../lib/metrics/process-endpoint.js";
import { releaseIdleHeap } from "../lib/idle-heap.js";
import { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import { storeMetrics } from "../lib/metrics/store-metrics.js";
import { StartupFailure, configFailure, failStartup, runProcess, stopOnSignals } from "../lib/process-lifecycle.js";
import { instrumentStore } from "../xdb-sql/instrumented-store.js";
import { describeStore, openStoreAtStart, watchStore } from "../xdb-sql/open-store.js";
import { smLimits } from "./limits.js";
import { enabledModules, moduleConfigKeys, type EnabledModule } from "./module-config.js";
import { MODULES } from "./modules.js";
import { reportSmLoad } from "./load-reporter.js";
import { SessionManager } from "./session-manager.js";

/** The modules the config enables, with their options; throws, naming the key, on a setting that does not fit. */
export function smModules(config: Config): EnabledModule[] {
  return enabledModules(MODULES, config.modules);
}

/** The config keys of every module's settings, for `xfarm config`. */
export function smModuleKeys(): KeySpec[] {
  return moduleConfigKeys(MODULES);
}

export async function runSm(config: Config): Promise<void> {
  const log = createLogger(config.sm.name, config.log_level, config.log_format);
  await runProcess(config.sm.name, () => log, () => startSm(config, log));
}

async function startSm(config: Config, log: Logger): Promise<void> {
  const name = config.sm.name;
  // Checked before anything starts: a module setting that does not fit stops the sm with one line naming it.
  let modules: EnabledModule[];
  try {
    modules = smModules(config);
  } catch (err) {
    throw configFailure(err);
  }
  const secret = config.secrets.get(name);
  if (!secret) throw new StartupFailure(`secrets."${name}"`, `no link secret for component "${name}": set secrets."${name}" in the config`);
  const metrics = new ProcessMetrics("sm", name);
  // Served first, so that /healthz answers and /readyz says why while the rest starts.
  let readiness = (): NotReady | null => ({ cause: "starting", reason: "starting" });
  await serveProcessEndpoint(config, "sm", metrics, () => readiness(), log);
  releaseIdleHeap(config.idle_gc, log, metrics);
  const store = instrumentStore(await openStoreAtStart(config.db), storeMetrics(metrics));
  log.info({ store: describeStore(config.db) }, "store open");
  const reachable = watchStore(store, log);
  const started = Date.now();
  const link = new LinkClient({ name, role: "sm", secret, routers: config.router.addresses, info: { started, flatAcks: true }, log, maxFrame: config.link.max_frame, highWater: config.link.high_water, pauseWhenCongested: true });
  const sm = new SessionManager({
    name,
    domains: config.domains,
    store,
    port: link,
    log,
    maxSessionsPerUser: config.sm.max_sessions_per_user,
    c2sGraceMs: config.sm.c2s_grace * 1000,
    limits: smLimits(config),
    modules,
    scramIterations: config.c2s.scram_iterations,
  });
  let routed = 0;
  link.on("route", (from, key, payload) => {
    routed++;
    sm.onRoute(from, key, payload);
  });
  linkMetrics(metrics, link);
  metrics.gauge("xfarm_sm_sessions", "Sessions this session manager holds.", () => sm.load().sessions);
  metrics.counter("xfarm_sm_messages_routed_total", "Message stanzas this session manager routed (its load report's messages).", () => sm.load().messages);
  metrics.counter("xfarm_sm_frames_routed_total", "Frames the router passed to this session manager (client stanzas, session operations).", () => routed);
  readiness = () => (!link.connected ? { cause: "link", reason: "not linked to the router" } : !reachable() ? { cause: "store", reason: "database unreachable" } : null);
  link.on("undeliverable", (to, key, payload) => sm.onUndeliverable(to, key, payload));
  link.on("members", (members) => sm.onMembers(members));
  link.on("up", () => sm.onRelinked());
  link.on("control", (msg) => {
    if (msg.op === "user-deleted") {
      sm.deleteUser(msg.user, false).catch((err: unknown) => log.error({ err, user: msg.user }, "ending a renamed account's sessions failed"));
    } else if (msg.op === "user-password-changed") {
      void sm.passwordChanged(msg.user);
    } else if (msg.op === "announce") {
      sm.announce(msg.body);
    } else if (msg.op === "delete-account") {
      sm.deleteUser(msg.user, msg.remove).then(
        () => link.sendControl({ op: "account-deleted", id: msg.id, ok: true }),
        (err: unknown) => {
          log.error({ err, user: msg.user }, "account deletion failed");
          link.sendControl({ op: "account-deleted", id: msg.id, ok: false, error: (err as Error).message });
        },
      );
    }
  });
  // A secret the router refuses at the first link-up is this process's config: restarts would loop on it.
  link.once("secretRefused", (reason) => failStartup(log, `secrets."${name}"`, `${reason}: set secrets."${name}" to the router's`));
  link.start();
  const stopReporting = reportSmLoad(link, sm, started);
  stopOnSignals(log, async () => {
    stopReporting();
    await sm.close();
    link.stop();
    await store.close();
  });
}
