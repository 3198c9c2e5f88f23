// A process's link to the router, as metrics: up or not, and the bytes
// waiting to be written on it (docs/metrics.md).
import type { LinkClient } from "../link/link-client.js";
import type { ProcessMetrics } from "./process-metrics.js";

export function linkMetrics(metrics: ProcessMetrics, link: Pick<LinkClient, "connected" | "queuedBytes">): void {
  metrics.gauge("xfarm_link_up", "1 while this process is linked to the router, else 0.", () => (link.connected ? 1 : 0));
  metrics.gauge("xfarm_link_queued_bytes", "Bytes waiting to be written on the link to the router.", () => link.queuedBytes);
}
