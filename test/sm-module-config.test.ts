// The sm's modules' settings: [sm.modules.NAME] tables and
// XFARM_SM_MODULES_* variables, checked against the module definitions at
// start-up; documented in the README and `xfarm config` as every key is.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { annotatedDefaults, envName, loadConfig } from "../lib/config.js";
import { defineModule } from "../sm/module-api.js";
import { NO_MODULE_SETTINGS, enabledModules, moduleConfigKeys } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { CLI } from "../sim/local-farm.js";
import { DOMAIN, Harness } from "./sm-harness.js";

const run = promisify(execFile);

function tmpFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-modules-"));
  const f = path.join(dir, "xfarm.toml");
  fs.writeFileSync(f, text);
  return f;
}

const probe = defineModule({
  name: "probe",
  doc: "A module for the tests.",
  enabled: false,
  options: {
    tag: { type: "string", default: "none", doc: "A string." },
    count: { type: "integer", default: 1, doc: "An integer." },
    loud: { type: "boolean", default: false, doc: "A boolean." },
    peers: { type: "string[]", default: [], doc: "A list." },
  },
  setup: () => {},
});
const DEFINITIONS = [...MODULES, probe];

describe("sm module settings", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("runs each module as its definition says unless the config says otherwise, with typed options", () => {
    const names = (table: Record<string, unknown>, env: Record<string, string> = {}) => enabledModules(DEFINITIONS, { table, env }).map((m) => m.definition.name);
    expect(names({})).toEqual(MODULES.map((m) => m.name));
    expect(names({ probe: { enabled: true }, time: { enabled: false } })).toContain("probe");
    expect(names({ time: { enabled: false } })).not.toContain("time");
    // The environment's word over the file's.
    expect(names({ time: { enabled: false } }, { XFARM_SM_MODULES_TIME_ENABLED: "true" })).toContain("time");
    const [options] = enabledModules([probe], {
      table: { probe: { enabled: true, tag: "x", count: 3, peers: ["a"] } },
      env: { XFARM_SM_MODULES_PROBE_LOUD: "1", XFARM_SM_MODULES_PROBE_PEERS: "b, c" },
    }).map((m) => m.options);
    expect(options).toEqual({ tag: "x", count: 3, loud: true, peers: ["b", "c"] });
  });

  it("refuses an unknown module, an unknown key, a wrong type and a disabled core module, naming the key", () => {
    const check = (table: Record<string, unknown>, env: Record<string, string> = {}) => () => enabledModules(DEFINITIONS, { table, env });
    expect(check({ nosuch: {} })).toThrow(/^config sm\.modules\.nosuch: no such module \(there are iq, roster, .*probe\)$/);
    expect(check({ time: true })).toThrow("config sm.modules.time: expected a table of the module's settings");
    expect(check({ time: { zone: "UTC" } })).toThrow("config sm.modules.time.zone: no such option of the time module");
    expect(check({ probe: { count: "many" } })).toThrow('config sm.modules.probe.count (the config file): expected integer, got "many"');
    expect(check({}, { XFARM_SM_MODULES_PROBE_LOUD: "loud" })).toThrow('config sm.modules.probe.loud (XFARM_SM_MODULES_PROBE_LOUD): expected boolean, got "loud"');
    expect(check({}, { XFARM_SM_MODULES_TIME_ZONE: "UTC" })).toThrow(/^config XFARM_SM_MODULES_TIME_ZONE: no such module option/);
    expect(check({ presence: { enabled: false } })).toThrow(
      "config sm.modules.presence.enabled: presence is a core module, which other modules need; it cannot be disabled",
    );
  });

  it("advertises and answers a module's feature only while it is enabled", async () => {
    const timeIq = `<iq type='get' id='t' to='${DOMAIN}'><time xmlns='urn:xmpp:time'/></iq>`;
    const infoIq = `<iq type='get' id='i' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`;
    h = await Harness.create(["alice"], { modules: enabledModules(MODULES, { table: { time: { enabled: false }, disco: { name: "Example IM" } }, env: {} }) });
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const [info] = await alice.request(infoIq);
    const query = info!.getChild("query")!;
    expect(query.getChildren("feature").map((f) => f.attrs.var)).not.toContain("urn:xmpp:time");
    expect(query.getChild("identity")!.attrs.name).toBe("Example IM");
    const [answer] = await alice.request(timeIq);
    expect(answer!.getChild("error")!.getChild("service-unavailable")).toBeDefined();
  });

  it("hands [sm.modules] and XFARM_SM_MODULES_* through the config unread, and still refuses unknown [sm] keys", () => {
    const f = tmpFile(`[sm]\nname = "sm-2"\n[sm.modules.time]\nenabled = false\n[sm.modules.nosuch]\nx = 1\n`);
    const c = loadConfig(f, { XFARM_SM_MODULES_PING_ENABLED: "false", XFARM_SM_NAME: "sm-3" });
    expect(c.sm.name).toBe("sm-3");
    expect(c.modules).toEqual({ table: { time: { enabled: false }, nosuch: { x: 1 } }, env: { XFARM_SM_MODULES_PING_ENABLED: "false" } });
    expect(() => loadConfig(tmpFile(`[sm]\nmodule = 1\n`), {})).toThrow("unknown config key sm.module");
    expect(() => loadConfig(tmpFile(`[sm]\nmodules = 1\n`), {})).toThrow("sm.modules must be a table of tables, one per module");
    expect(loadConfig(null, {}).modules).toEqual(NO_MODULE_SETTINGS);
  });

  it("finds every sm/mod-* file's module, core modules first, so that a new feature is one new file", () => {
    const files = fs.readdirSync(new URL("../sm/", import.meta.url)).filter((f) => /^mod-.*\.ts$/.test(f));
    expect(MODULES).toHaveLength(files.length);
    expect(MODULES.slice(0, 6).map((m) => m.name)).toEqual(["iq", "roster", "presence", "message", "offline", "disco"]);
    expect(MODULES.slice(0, 6).every((m) => m.enabled === "core")).toBe(true);
    const others = MODULES.slice(6).map((m) => m.name);
    expect(others).toEqual([...others].sort());
  });

  it("documents every module setting in the README and in `xfarm config`, whose file reads back as the defaults", () => {
    const readme = fs.readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const keys = moduleConfigKeys(MODULES);
    const annotated = annotatedDefaults(keys);
    for (const spec of keys) {
      expect(readme).toContain(`| \`${spec.key}\` | ${JSON.stringify(spec.default)} | \`${envName(spec.key)}\` | ${spec.doc} |`);
      expect(annotated).toContain(spec.doc);
    }
    const uncommented = loadConfig(tmpFile(annotated), {});
    expect(enabledModules(MODULES, uncommented.modules).map((m) => m.definition.name)).toEqual(MODULES.map((m) => m.name));
  });

  it("stops `xfarm sm` with one line naming a setting that does not fit", async () => {
    const f = tmpFile(`[sm.modules.time]\nenabled = "no"\n`);
    const failed = await run(process.execPath, [CLI, "sm", "--config", f]).then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed?.code).toBe(78);
    expect(failed?.stderr).toBe("");
    expect(JSON.parse(failed!.stdout)).toMatchObject({
      level: "fatal",
      key: "sm.modules.time.enabled",
      msg: 'config sm.modules.time.enabled (the config file): expected boolean, got "no"',
    });
  });
});
