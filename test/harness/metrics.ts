// Reading a process's Prometheus text exposition in tests, and the metrics docs/metrics.md lists.
import fs from "node:fs";

/** The body of GET `url` with its status. */
export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

/** The sum of every sample of metric `name` whose labels include `labels` (0 when none). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Whether the exposition has metric `name` at all (a # TYPE line). */
export function has(text: string, name: string): boolean {
  return text.includes(`# TYPE ${name} `);
}

/** The metric names in the first column of docs/metrics.md's tables. */
export function documentedMetrics(): Set<string> {
  const doc = fs.readFileSync(new URL("../../docs/metrics.md", import.meta.url), "utf8");
  return new Set([...doc.matchAll(/^\| `(xfarm_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
}
