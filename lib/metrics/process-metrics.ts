// One process's Prometheus registry (prom-client): its default process and
// Node.js metrics, and the xfarm_* metrics its role adds. Counters the code
// keeps anyway are read when Prometheus scrapes (collect callbacks), so that
// serving a stanza costs no label lookup (docs/metrics.md).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { allocatorOf } from "../malloc.js";

export type Role = "router" | "sm" | "c2s";

/** Values by label value, read at scrape time. */
export type Labelled = Readonly<Record<string, number>>;

export class ProcessMetrics {
  readonly registry = new Registry();

  /** Every series carries the process's role and name: several processes of one box are told apart without relabelling. */
  constructor(role: Role, name: string) {
    this.registry.setDefaultLabels({ role, process: name });
  }

  /** prom-client's process and Node.js metrics (event-loop delay, GC, heap, RSS): only once served, as they cost a monitor and a GC observer. */
  collectDefaults(): void {
    collectDefaultMetrics({ register: this.registry, prefix: "xfarm_" });
    // Read once: a process cannot change its allocator.
    const allocator = allocatorOf("self");
    if (allocator !== null) this.gaugeBy("xfarm_malloc_info", "1 for the C allocator this process runs with: jemalloc or system (start.malloc)", "allocator", () => ({ [allocator]: 1 }));
  }

  /** A counter the code keeps as a number; `read` at scrape time. */
  counter(name: string, help: string, read: () => number): void {
    this.fromReader("counter", name, help, null, () => ({ "": read() }));
  }

  /** A counter kept as numbers by one label's value (a SASL mechanism, a stanza kind). */
  counterBy(name: string, help: string, label: string, read: () => Labelled): void {
    this.fromReader("counter", name, help, label, read);
  }

  gauge(name: string, help: string, read: () => number): void {
    this.fromReader("gauge", name, help, null, () => ({ "": read() }));
  }

  gaugeBy(name: string, help: string, label: string, read: () => Labelled): void {
    this.fromReader("gauge", name, help, label, read);
  }

  /** A metric whose values `read` gives when scraped: one, or one per value of `label`. */
  private fromReader(kind: "counter" | "gauge", name: string, help: string, label: string | null, read: () => Labelled): void {
    const labelNames = label ? [label] : [];
    const registers = [this.registry];
    // Set afresh from zero at each scrape (a gauge's inc from zero is a set).
    const fill = (metric: { reset(): void; inc(labels: Record<string, string>, value: number): void }) => {
      metric.reset();
      for (const [value, n] of Object.entries(read())) metric.inc(label ? { [label]: value } : {}, n);
    };
    if (kind === "counter") {
      new Counter({ name, help, labelNames, registers, collect() {
        fill(this);
      } });
    } else {
      new Gauge({ name, help, labelNames, registers, collect() {
        fill(this);
      } });
    }
  }

  /** A histogram fed as things happen (SQL queries: each costs far more than the observation). */
  histogram<L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
