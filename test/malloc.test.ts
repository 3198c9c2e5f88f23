// start.malloc: the environment `xfarm start` gives its children for each
// choice (lib/malloc.ts), and the config's check of the key. That the
// children do run with jemalloc is checked on a running farm, through each
// process's xfarm_malloc_info (test/e2e-metrics.test.ts).
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../lib/config.js";
import { allocatorOf, findJemalloc, mallocEnv } from "../lib/malloc.js";

const JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

describe("start.malloc", () => {
  it("auto preloads jemalloc where it is installed, before the libraries LD_PRELOAD already names", () => {
    expect(mallocEnv("auto", { PATH: "/bin" }, JEMALLOC)).toEqual({ env: { PATH: "/bin", LD_PRELOAD: JEMALLOC }, allocator: "jemalloc" });
    expect(mallocEnv("auto", { LD_PRELOAD: "/opt/libtrace.so" }, JEMALLOC).env.LD_PRELOAD).toBe(`${JEMALLOC}:/opt/libtrace.so`);
    // A unit that preloads it already (deploy/systemd) does not get it twice.
    expect(mallocEnv("jemalloc", { LD_PRELOAD: "libjemalloc.so.2" }, JEMALLOC).env.LD_PRELOAD).toBe(JEMALLOC);
  });

  it("auto keeps the system's malloc where jemalloc is not installed", () => {
    expect(mallocEnv("auto", { PATH: "/bin" }, null)).toEqual({ env: { PATH: "/bin", LD_PRELOAD: "" }, allocator: "system" });
  });

  it("system takes jemalloc out of an inherited LD_PRELOAD, and nothing else", () => {
    const { env, allocator } = mallocEnv("system", { LD_PRELOAD: "libjemalloc.so.2 /opt/libtrace.so" }, JEMALLOC);
    expect([env.LD_PRELOAD, allocator]).toEqual(["/opt/libtrace.so", "system"]);
  });

  it("jemalloc where it is not installed is an error naming the key and the package", () => {
    expect(() => mallocEnv("jemalloc", {}, null)).toThrow(/config start\.malloc = "jemalloc", but libjemalloc\.so\.2 is not installed \(Debian: apt-get install libjemalloc2\)/);
  });

  it("the config takes auto, jemalloc or system, auto by default", () => {
    expect(loadConfig(null, {}).start.malloc).toBe("auto");
    expect(loadConfig(null, { XFARM_START_MALLOC: "system" }).start.malloc).toBe("system");
    expect(() => loadConfig(null, { XFARM_START_MALLOC: "tcmalloc" })).toThrow('config start.malloc: expected one of auto, jemalloc, system, got "tcmalloc"');
  });

  it("tells a process's allocator from its maps", () => {
    expect(["jemalloc", "system"]).toContain(allocatorOf("self"));
    expect(allocatorOf(2 ** 22 + 1)).toBeNull();
  });

  // .ci/run installs libjemalloc2; elsewhere, without it, there is nothing to load.
  it.skipIf(!findJemalloc() && process.env.CI !== "true")("loads jemalloc by the bare name the front end's systemd unit preloads, and not without it", async () => {
    const allocatorUnder = async (preload: string) => {
      const child = spawn(process.execPath, ["-e", "console.log('up'); process.stdin.resume()"], { env: { ...process.env, LD_PRELOAD: preload }, stdio: ["pipe", "pipe", "inherit"] });
      // Mapped by ld.so before node's main runs: once it prints, its maps show it.
      await new Promise((resolve) => child.stdout.once("data", resolve));
      const allocator = allocatorOf(child.pid!);
      child.kill();
      return allocator;
    };
    expect(await allocatorUnder("libjemalloc.so.2")).toBe("jemalloc");
    expect(await allocatorUnder("")).toBe("system");
  });
});
