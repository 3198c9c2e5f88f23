// Starts a process's metrics and health endpoint from the config: the port
// of its role under [metrics] (0: none). A port that cannot be had is a
// start-up failure naming that key (lib/process-lifecycle.ts).
import type http from "node:http";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import { listenFailure } from "../process-lifecycle.js";
import { serveHealth, type NotReady } from "./health-server.js";
import type { ProcessMetrics, Role } from "./process-metrics.js";

export async function serveProcessEndpoint(config: Config, role: Role, metrics: ProcessMetrics, readiness: () => NotReady | null, log: Logger): Promise<http.Server | null> {
  const key = `metrics.${role}_port` as const;
  const port = config.metrics[`${role}_port`];
  if (port === 0) return null;
  const host = config.metrics.host;
  const server = await serveHealth({ host, port, metrics, readiness, log }).catch((err: unknown) => {
    throw listenFailure(key, port, err);
  });
  metrics.collectDefaults();
  return server;
}
