// Which C allocator a farm process runs with. glibc's malloc keeps some
// 9-12 KB more a STARTTLS session than jemalloc does (docs/bench.md,
// "jemalloc"): the handshakes leave glibc's arenas fragmented.
// A process cannot change its allocator once running, so `xfarm start`
// preloads jemalloc into the front ends it spawns (start.malloc), and the
// front end's systemd unit sets LD_PRELOAD itself.
import fs from "node:fs";
import { StartupFailure } from "./process-lifecycle.js";

export const MALLOC_CHOICES = ["auto", "jemalloc", "system"] as const;
export type MallocChoice = (typeof MALLOC_CHOICES)[number];
/** What a running process allocates with: jemalloc preloaded, or the C library's own malloc. */
export type Allocator = "jemalloc" | "system";

/** Debian's libjemalloc2 (and other distributions' jemalloc), by the multiarch directories a Linux node runs from. */
const JEMALLOC_SONAME = "libjemalloc.so.2";
const LIBRARY_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

/** Where jemalloc is installed, or null. */
export function findJemalloc(dirs: readonly string[] = LIBRARY_DIRS): string | null {
  for (const dir of dirs) {
    const file = `${dir}/${JEMALLOC_SONAME}`;
    if (fs.existsSync(file)) return file;
  }
  return null;
}

/** The allocator process `pid` has mapped; null when its maps cannot be read (not Linux, gone, another user's). */
export function allocatorOf(pid: number | "self"): Allocator | null {
  try {
    return /\/libjemalloc\.so[^/\n]*$/m.test(fs.readFileSync(`/proc/${pid}/maps`, "utf8")) ? "jemalloc" : "system";
  } catch {
    return null;
  }
}

/**
 * The environment that makes a spawned process run with the allocator
 * `choice` asks for, from the one given (LD_PRELOAD's other libraries kept):
 * "jemalloc" is a start-up failure when it is not installed, "auto" takes
 * it when it is.
 */
export function mallocEnv(choice: MallocChoice, env: NodeJS.ProcessEnv, jemalloc: string | null = findJemalloc()): { env: NodeJS.ProcessEnv; allocator: Allocator } {
  const preload = (env.LD_PRELOAD ?? "").split(/[:\s]+/).filter((lib) => lib !== "");
  const others = preload.filter((lib) => !lib.includes("libjemalloc"));
  if (choice === "system" || (choice === "auto" && jemalloc === null)) {
    return { env: { ...env, LD_PRELOAD: others.join(":") }, allocator: "system" };
  }
  if (jemalloc === null) throw new StartupFailure("start.malloc", `config start.malloc = "jemalloc", but ${JEMALLOC_SONAME} is not installed (Debian: apt-get install libjemalloc2)`);
  return { env: { ...env, LD_PRELOAD: [jemalloc, ...others].join(":") }, allocator: "jemalloc" };
}
