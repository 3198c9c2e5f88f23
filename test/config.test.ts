// The config: defaults, file, environment overrides, and its documentation.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_KEYS, annotatedDefaults, envName, loadConfig } from "../lib/config.js";

function tmpFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-config-"));
  const f = path.join(dir, "xfarm.toml");
  fs.writeFileSync(f, text);
  return f;
}

describe("config", () => {
  it("needs no file for localhost", () => {
    const c = loadConfig(null, {});
    expect(c.domains).toEqual(["localhost"]);
    expect(c.c2s.port).toBe(5222);
    expect(c.c2s.tls_port).toBe(5223);
    expect(c.c2s.require_tls).toBe(true);
    expect(c.db).toBe(`sqlite:${path.join("./data", "xfarm.db")}`);
  });

  it("reads the file, then lets the environment override it", () => {
    const f = tmpFile(`domains = ["example.org"]\n[c2s]\nport = 6222\nrequire_tls = false\n[secrets]\n"c2s-1" = "abc"\n`);
    const c = loadConfig(f, { XFARM_C2S_PORT: "7222", XFARM_DOMAINS: "a.example,b.example", XFARM_SM_NAME: "sm-9" });
    expect(c.c2s.port).toBe(7222);
    expect(c.c2s.require_tls).toBe(false);
    expect(c.domains).toEqual(["a.example", "b.example"]);
    expect(c.sm.name).toBe("sm-9");
    expect(c.secrets.get("c2s-1")).toBe("abc");
  });

  it("finds no secret for a name that Object.prototype has, with or without the tables", () => {
    const names = ["constructor", "__proto__", "toString", "hasOwnProperty"];
    const bare = loadConfig(null, {});
    const tables = loadConfig(tmpFile(`[secrets]\n"c2s-1" = "abc"\n[components]\n"muc.localhost" = "m"\n`), {});
    for (const c of [bare, tables]) {
      for (const name of names) {
        expect(c.secrets.get(name)).toBeUndefined();
        expect(c.components.get(name)).toBeUndefined();
      }
    }
    expect(tables.components.get("muc.localhost")).toBe("m");
    // A table entry named like a prototype property is an entry like any other.
    expect(loadConfig(tmpFile(`[components]\n"__proto__" = "p"\n`), {}).components.get("__proto__")).toBe("p");
    expect(() => loadConfig(tmpFile(`[components]\n"muc.localhost" = 5\n`), {})).toThrow(/secret of "muc.localhost" must be a non-empty string/);
  });

  it("refuses unknown keys and values of the wrong type, naming them", () => {
    expect(() => loadConfig(tmpFile(`[c2s]\nprot = 1\n`), {})).toThrow(/unknown config key c2s.prot/);
    expect(() => loadConfig(tmpFile(`colour = "red"\n`), {})).toThrow(/unknown config key colour/);
    expect(() => loadConfig(null, { XFARM_C2S_PORT: "many" })).toThrow(/c2s.port \(XFARM_C2S_PORT\): expected integer/);
    expect(() => loadConfig(tmpFile(`[c2s]\nrequire_tls = "yes"\n`), {})).toThrow(/expected boolean/);
    expect(() => loadConfig(null, { XFARM_IDLE_GC: "3" })).toThrow("config idle_gc must be 0 (never) or at least 6 seconds, got 3");
    expect(loadConfig(null, { XFARM_IDLE_GC: "0" }).idle_gc).toBe(0);
  });

  it("refuses limits that do not fit together: what must fit a link frame, a queue smaller than a frame, zero", () => {
    expect(() => loadConfig(null, { XFARM_C2S_MAX_STANZA_SIZE: "1000000" })).toThrow(
      "config link.max_frame (1048576) must be at least c2s.max_stanza_size (1000000) + 65536 bytes of headers",
    );
    expect(() => loadConfig(tmpFile(`[link]\nmax_frame = 300000\n[c2s]\nmax_stanza_size = 100000\n`), {})).toThrow(/must be at least sm.max_pep_item_size \(250000\) \+ 65536/);
    expect(() => loadConfig(null, { XFARM_SM_MAX_USER_QUEUE_BYTES: "65536" })).toThrow(
      "config sm.max_user_queue_bytes (65536) must be at least link.max_frame (1048576)",
    );
    expect(() => loadConfig(null, { XFARM_SM_MAX_PEP_NODES: "0" })).toThrow("config sm.max_pep_nodes must be at least 1");
    // Raised together, they fit.
    const c = loadConfig(null, { XFARM_C2S_MAX_STANZA_SIZE: "1000000", XFARM_LINK_MAX_FRAME: "2000000", XFARM_SM_MAX_USER_QUEUE_BYTES: "4000000" });
    expect(c.link.max_frame).toBe(2_000_000);
  });

  it("documents every key in the README and in `xfarm config`", () => {
    const readme = fs.readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const annotated = annotatedDefaults();
    for (const spec of CONFIG_KEYS) {
      expect(readme).toContain(`| \`${spec.key}\` | ${JSON.stringify(spec.default)} | \`${envName(spec.key)}\` | ${spec.doc} |`);
      expect(annotated).toContain(spec.doc);
    }
  });
});
