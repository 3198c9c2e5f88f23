// The sm's modules' settings: `[sm.modules.NAME]` tables (`enabled` and the
// module's declared options) and XFARM_SM_MODULES_NAME_KEY variables, which
// lib/config.ts hands through unread (lib knows no module), checked here at
// start-up against the module definitions: an unknown module, an unknown
// key, a value of the wrong type or a core module disabled stops the sm with
// one line naming the key.
import { MODULE_ENV_PREFIX, coerce, envName, type KeySpec, type ModuleSettings } from "../lib/config.js";
import type { ModuleDefinition, OptionSpecs, OptionsOf } from "./module-api.js";

/** A module the sm runs, with its options' values. */
export interface EnabledModule {
  readonly definition: ModuleDefinition;
  readonly options: OptionsOf<OptionSpecs>;
}

/** Nothing set: every module as its definition says. */
export const NO_MODULE_SETTINGS: ModuleSettings = { table: {}, env: {} };

/** The config keys of the modules' settings, documented as lib/config.ts's keys are (README, `xfarm config`). */
export function moduleConfigKeys(definitions: readonly ModuleDefinition[]): KeySpec[] {
  return definitions.flatMap((d) => [enabledKey(d), ...Object.entries(d.options).map(([key, spec]) => ({ key: optionKey(d, key), ...spec }))]);
}

/** The modules to run, in list order, with their options; throws, naming the key, on a setting that does not fit. */
export function enabledModules(definitions: readonly ModuleDefinition[], settings: ModuleSettings): EnabledModule[] {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  for (const [name, table] of Object.entries(settings.table)) {
    const definition = byName.get(name);
    if (!definition) throw new Error(`config sm.modules.${name}: no such module (there are ${[...byName.keys()].join(", ")})`);
    if (typeof table !== "object" || table === null || Array.isArray(table)) throw new Error(`config sm.modules.${name}: expected a table of the module's settings`);
    for (const key of Object.keys(table)) {
      if (key !== "enabled" && !Object.hasOwn(definition.options, key)) throw new Error(`config sm.modules.${name}.${key}: no such option of the ${name} module`);
    }
  }
  const known = new Set(moduleConfigKeys(definitions).map((spec) => envName(spec.key)));
  for (const variable of Object.keys(settings.env)) {
    if (!known.has(variable)) throw new Error(`config ${variable}: no such module option (variables starting ${MODULE_ENV_PREFIX} name sm.modules.NAME.KEY)`);
  }
  const enabled: EnabledModule[] = [];
  for (const definition of definitions) {
    const table = (settings.table[definition.name] ?? {}) as Record<string, unknown>;
    const on = setting(enabledKey(definition), table.enabled, settings.env) as boolean;
    if (definition.enabled === "core" && !on) {
      throw new Error(`config sm.modules.${definition.name}.enabled: ${definition.name} is a core module, which other modules need; it cannot be disabled`);
    }
    // Checked even when the module is off: a mistake shows before the day it is turned on.
    const options: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(definition.options)) {
      options[key] = setting({ key: optionKey(definition, key), ...spec }, table[key], settings.env);
    }
    if (on) enabled.push({ definition, options: options as OptionsOf<OptionSpecs> });
  }
  return enabled;
}

/** A setting's value: the environment's over the file's over the default. */
function setting(spec: KeySpec, fromFile: unknown, env: Record<string, string>): unknown {
  const variable = envName(spec.key);
  if (env[variable] !== undefined) return coerce(spec, env[variable], variable);
  if (fromFile !== undefined) return coerce(spec, fromFile, "the config file");
  return structuredClone(spec.default);
}

function enabledKey(definition: ModuleDefinition): KeySpec {
  const core = definition.enabled === "core";
  const doc = core
    ? `${definition.doc} A core module: other modules need it, so it cannot be disabled.`
    : `${definition.doc} ${definition.enabled ? "On unless set false." : "Off unless set true."}`;
  return { key: `sm.modules.${definition.name}.enabled`, type: "boolean", default: core || definition.enabled === true, doc };
}

function optionKey(definition: ModuleDefinition, key: string): string {
  return `sm.modules.${definition.name}.${key}`;
}
