// The test tiers (test/tiers.ts): every test file belongs to exactly one,
// each long tier has its script, and CI runs every tier.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LONG_FILES, LONG_TIERS, type Tier } from "./tiers.js";

const ROOT = path.resolve(import.meta.dirname, "..");

function testFiles(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return testFiles(rel);
    return e.name.endsWith(".test.ts") ? [rel] : [];
  });
}

describe("the test tiers", () => {
  it("put every test file in exactly one tier", () => {
    // As vitest.config.ts builds its projects: "main" takes every file no long tier names.
    const tiersOf = (file: string): Tier[] => [
      ...(LONG_FILES.includes(file) ? [] : ["main" as const]),
      ...(Object.keys(LONG_TIERS) as (keyof typeof LONG_TIERS)[]).filter((t) => (LONG_TIERS[t] as readonly string[]).includes(file)),
    ];
    const files = testFiles("test");
    for (const f of files) expect(tiersOf(f), f).toHaveLength(1);
    // A long tier names only files that exist, each once.
    for (const f of LONG_FILES) expect(files, f).toContain(f);
    expect(new Set(LONG_FILES).size).toBe(LONG_FILES.length);
  });

  it("give each long tier its script, run by CI after `npm test`", () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts.test).toMatch(/vitest run --project main$/);
    const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8");
    expect(ci).toMatch(/^npm test$/m);
    for (const tier of Object.keys(LONG_TIERS)) {
      expect(scripts[`test:${tier}`], tier).toMatch(new RegExp(`vitest run --project ${tier}$`));
      expect(ci, tier).toMatch(new RegExp(`^timeout \\w+ npx vitest run --project ${tier}$`, "m"));
    }
  });
});
