// Asks a child of `xfarm start` whether it is ready: GET /readyz on its
// metrics port (lib/metrics/health-server.ts). No answer is an answer too:
// a hung process is as unready as one that says so.
import http from "node:http";

const ASK_TIMEOUT_MS = 2_000;

export interface Unready {
  /** lib/metrics/health-server.ts's NotReady causes, or "unresponsive". */
  cause: string;
  reason: string;
}

export type Readiness = { ready: true } | ({ ready: false } & Unready);

/** Where a child serving on `host` is reached from this box: a wildcard address is reached on loopback. */
export function reachableHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

/** GET /readyz: the status and the parsed body; throws when there is no answer in time, or it is not JSON. */
function getReadyz(host: string, port: number): Promise<{ status: number; body: ReadyzBody }> {
  return new Promise((resolve, reject) => {
    // node's http rather than fetch: polled every 2 s for as long as the farm runs, fetch
    // (undici) allocated several times as much, which the supervisor's memory kept (docs/bench.md).
    const req = http.get({ host, port, path: "/readyz", timeout: ASK_TIMEOUT_MS, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as ReadyzBody });
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${ASK_TIMEOUT_MS} ms`)));
    req.on("error", reject);
  });
}

interface ReadyzBody {
  ready?: boolean;
  cause?: string;
  reason?: string;
  pid?: number;
}

/** Asks the child whose pid is `pid`: an answer from another process (one that held the port first) is no answer. */
export async function askReady(host: string, port: number, pid: number): Promise<Readiness> {
  try {
    const { status, body } = await getReadyz(host, port);
    if (body.pid !== pid) return { ready: false, cause: "unresponsive", reason: `another process (pid ${body.pid}) answers on port ${port}` };
    if (status === 200) return { ready: true };
    return { ready: false, cause: body.cause ?? "unknown", reason: body.reason ?? `HTTP ${status}` };
  } catch (err) {
    return { ready: false, cause: "unresponsive", reason: `no answer on /readyz: ${(err as Error).message}` };
  }
}
