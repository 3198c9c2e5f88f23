// The router's metrics (docs/metrics.md), read from its member table and
// counters when scraped.
import type { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import type { Router } from "./router.js";

export function routerMetrics(m: ProcessMetrics, router: Router): void {
  const byRole = (value: (queued: number) => number) => () => {
    const out: Record<string, number> = { c2s: 0, sm: 0 };
    // The router's own row first, then the linked processes'.
    for (const e of router.statusEntries().slice(1)) out[e.role] = (out[e.role] ?? 0) + value(e.queued);
    return out;
  };
  m.gauge("xfarm_router_active", "1 while this router routes (alone, or the active one of its pair), else 0.", () => (router.active ? 1 : 0));
  m.gaugeBy("xfarm_router_links", "Processes linked to this router, by role.", "link_role", byRole(() => 1));
  m.gaugeBy("xfarm_router_queued_bytes", "Bytes waiting to be written on the links to processes, by the processes' role.", "link_role", byRole((q) => q));
  m.counter("xfarm_router_frames_routed_total", "ROUTE frames passed on to a linked process.", () => router.routed);
  m.counter("xfarm_router_frames_returned_total", "ROUTE frames returned to their sender as undeliverable (no such process linked).", () => router.returned);
}
