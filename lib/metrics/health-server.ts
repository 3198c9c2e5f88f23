// The HTTP server every process runs on its metrics port: GET /metrics
// (Prometheus text format), /healthz (200 while the event loop answers) and
// /readyz (200 when the process can serve, else 503 with the reason as JSON).
// docs/metrics.md; the supervisor polls /readyz (deploy/child-health.ts).
import http from "node:http";
import type { Logger } from "../log.js";
import type { ProcessMetrics } from "./process-metrics.js";

/** Why a process is not ready; `cause` lets the supervisor tell what a restart could fix. */
export interface NotReady {
  cause: "link" | "store" | "starting";
  reason: string;
}

export interface HealthServerOptions {
  host: string;
  port: number;
  metrics: ProcessMetrics;
  /** null when ready. */
  readiness: () => NotReady | null;
  log: Logger;
}

/** Listens, or rejects with the listen error (EADDRINUSE: the caller fails its start-up naming the key). */
export function serveHealth(opts: HealthServerOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return reply(res, 405, "text/plain", "GET only\n");
    if (path === "/healthz") return reply(res, 200, "text/plain", "ok\n");
    if (path === "/readyz") {
      const not = opts.readiness();
      // The pid tells a supervisor that the answer is its child's, not another process's on a port taken twice.
      return reply(res, not ? 503 : 200, "application/json", JSON.stringify(not ? { ready: false, ...not, pid: process.pid } : { ready: true, pid: process.pid }) + "\n");
    }
    if (path === "/metrics") {
      opts.metrics.metrics().then(
        (text) => reply(res, 200, opts.metrics.contentType, text),
        (err: unknown) => {
          opts.log.error({ err }, "metrics collection failed");
          reply(res, 500, "text/plain", "metrics collection failed\n");
        },
      );
      return;
    }
    reply(res, 404, "text/plain", "/metrics, /healthz or /readyz\n");
  });
  // A scraper holds no socket open for long; an idle one must not keep a stopping process.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      server.on("error", (err) => opts.log.error({ err }, "metrics server error"));
      server.unref();
      opts.log.info({ host: opts.host, port: opts.port }, "serving /metrics, /healthz and /readyz");
      resolve(server);
    });
  });
}

function reply(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}
