// The supervisor's alerts: a JSON POST to `[start] alert_webhook` when it
// restarts a child, when one stays down, and when it gives up on one
// (docs/metrics.md). A webhook that fails is logged, never fatal: the farm
// runs on without its alerts.
import os from "node:os";
import type { Logger } from "../lib/log.js";

const POST_TIMEOUT_MS = 5_000;

export interface Alert {
  event: "restarted" | "down" | "gave-up";
  /** The child's name and role (c2s-2, c2s). */
  child: string;
  role: string;
  /** Why, in words: "exited with code 1", "not ready for 60 s: not linked to the router", … */
  reason: string;
  /** For gave-up: the config key the child named in its start-up failure. */
  key?: string;
}

export class Alerts {
  /** Posts under way, so that a stopping supervisor sends what it announced (a gave-up alert, often its last) before it exits. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  send(alert: Alert): void {
    if (!this.url) return;
    const body = JSON.stringify({ ...alert, host: os.hostname(), time: new Date().toISOString() });
    const post = fetch(this.url, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(POST_TIMEOUT_MS) }).then(
      async (res) => {
        await res.body?.cancel().catch(() => {});
        if (!res.ok) this.log.warn({ event: alert.event, child: alert.child, status: res.status }, "alert webhook refused the alert");
      },
      (err: unknown) => this.log.warn({ event: alert.event, child: alert.child, err: (err as Error).message }, "alert webhook unreachable; alert not sent"),
    );
    this.inFlight.add(post);
    void post.finally(() => this.inFlight.delete(post));
  }

  /** Resolves once every post under way has ended (each within its timeout). */
  async flush(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
