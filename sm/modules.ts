// Every sm feature module: each file sm/mod-NAME.ts beside this one,
// found when the sm loads, so that a new feature is that one file (and
// its settings, `[sm.modules.NAME]`, are there by its definition alone).
//
// Modules register their hooks and filters in this order: the core modules
// (which the others build on) in CORE's order, then the others by name.
// What must run before something else says so with a hook's or filter's
// priority, never by its place here.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ModuleDefinition } from "./module-api.js";

const CORE = ["iq", "roster", "presence", "message", "offline", "disco"];

/** A module file: compiled (dist/sm) or, under the test runner, its source. */
const MODULE_FILE = /^mod-[a-z0-9-]+\.(js|ts)$/;

function isDefinition(value: unknown): value is ModuleDefinition {
  const v = value as Partial<ModuleDefinition> | null;
  return typeof v === "object" && v !== null && typeof v.name === "string" && typeof v.setup === "function" && typeof v.options === "object" && (v.enabled === true || v.enabled === false || v.enabled === "core");
}

async function discover(): Promise<ModuleDefinition[]> {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const found: ModuleDefinition[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => MODULE_FILE.test(f) && !f.endsWith(".d.ts")).sort()) {
    const definitions = Object.values(await import(pathToFileURL(path.join(dir, file)).href)).filter(isDefinition);
    if (definitions.length !== 1) throw new Error(`sm/${file} must export one module definition (defineModule), not ${definitions.length}`);
    const definition = definitions[0]!;
    const twin = found.find((d) => d.name === definition.name);
    if (twin) throw new Error(`sm/${file}: a second module named "${definition.name}"`);
    found.push(definition);
  }
  const rank = (d: ModuleDefinition) => (CORE.includes(d.name) ? CORE.indexOf(d.name) : CORE.length);
  return found.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

export const MODULES: readonly ModuleDefinition[] = await discover();
