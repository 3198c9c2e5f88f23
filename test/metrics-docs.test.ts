// docs/metrics.md lists every metric the Grafana dashboard uses
// (deploy/grafana/xfarm.json); test/e2e-metrics.test.ts checks that the
// processes serve every metric the document lists.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { documentedMetrics } from "./harness/metrics.js";

describe("the metrics documentation and dashboard", () => {
  it("the dashboard's queries use documented metrics only", () => {
    const dashboard = JSON.parse(fs.readFileSync(new URL("../deploy/grafana/xfarm.json", import.meta.url), "utf8")) as { panels: { targets: { expr: string }[] }[] };
    const documented = documentedMetrics();
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/xfarm_[a-z0-9_]+/g)].map((m) => m[0].replace(/_bucket$/, "")))));
    expect(used.size).toBeGreaterThan(15);
    expect([...used].filter((m) => !documented.has(m))).toEqual([]);
  });
});
