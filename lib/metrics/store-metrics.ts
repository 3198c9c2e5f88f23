// The store's queries, as metrics: a latency histogram and an error count
// per Store method. Fed by xdb-sql/instrumented-store.ts, which times every
// call of the Store it wraps.
import type { ProcessMetrics } from "./process-metrics.js";

/** Query latencies from 0.5 ms (SQLite, cached) to 5 s (a MySQL server in trouble). */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface QueryObserver {
  /** A Store call `op` took `seconds`; `failed`: it threw or rejected. */
  query(op: string, seconds: number, failed: boolean): void;
}

export function storeMetrics(metrics: ProcessMetrics): QueryObserver {
  const latency = metrics.histogram("xfarm_sql_query_duration_seconds", "Time a store call took, by Store method (op), failed ones included.", ["op"], BUCKETS);
  // One child per method, made at its first call: no label lookup at the next ones.
  const children = new Map<string, { observe(v: number): void }>();
  const errors: Record<string, number> = {};
  metrics.counterBy("xfarm_sql_errors_total", "Store calls that failed (the database unreachable, a constraint, a bug), by Store method.", "op", () => errors);
  return {
    query(op, seconds, failed) {
      let child = children.get(op);
      if (!child) children.set(op, (child = latency.labels({ op })));
      child.observe(seconds);
      if (failed) errors[op] = (errors[op] ?? 0) + 1;
    },
  };
}
