// Asks a child of `xfarm start` whether it is ready: GET /readyz on its
// metrics port (lib/metrics/health-server.ts). No answer is an answer too:
// a hung process is as unready as one that says so.
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

/** Asks the child whose pid is `pid`: an answer from another process (one that held the port first) is no answer. */
export async function askReady(host: string, port: number, pid: number): Promise<Readiness> {
  const where = host.includes(":") ? `[${host}]` : host;
  try {
    const res = await fetch(`http://${where}:${port}/readyz`, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
    const body = (await res.json()) as { ready?: boolean; cause?: string; reason?: string; pid?: number };
    if (body.pid !== pid) return { ready: false, cause: "unresponsive", reason: `another process (pid ${body.pid}) answers on port ${port}` };
    if (res.status === 200) return { ready: true };
    return { ready: false, cause: body.cause ?? "unknown", reason: body.reason ?? `HTTP ${res.status}` };
  } catch (err) {
    return { ready: false, cause: "unresponsive", reason: `no answer on /readyz: ${(err as Error).message}` };
  }
}
