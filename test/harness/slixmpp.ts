// Debian's python3-slixmpp, a second real client library, driven by a
// script in test/interop/ that prints each event as one JSON line.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

// Debian's interpreter, where python3-slixmpp installs (not a pyenv one on PATH).
export const PYTHON = "/usr/bin/python3";

export interface SlixEvent {
  event: string;
  [k: string]: string;
}

/** Throws, saying how to install it, when python3-slixmpp is missing. */
export function requireSlixmpp(): void {
  const probe = spawnSync(PYTHON, ["-c", "import slixmpp"]);
  if (probe.status !== 0) throw new Error("python3-slixmpp is not installed: apt-get install python3-slixmpp (.ci/run does)");
}

export class SlixClient {
  readonly events: SlixEvent[] = [];
  private stderr = "";
  private waiters: { test: (e: SlixEvent) => boolean; resolve: (e: SlixEvent) => void }[] = [];
  private readonly exit: Promise<number | null>;

  /** Runs test/interop/`script` with `args`. */
  constructor(script: string, args: string[]) {
    const proc: ChildProcess = spawn(PYTHON, [fileURLToPath(new URL(`../interop/${script}`, import.meta.url)), ...args]);
    this.exit = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.stderr!.on("data", (d) => (this.stderr += d));
    readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
      const e = JSON.parse(line) as SlixEvent;
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.test(e) ? (w.resolve(e), false) : true));
    });
  }

  /** The first event that passes `test`, seen already or to come. */
  next(test: (e: SlixEvent) => boolean, timeoutMs = 15_000): Promise<SlixEvent> {
    return new Promise((resolve, reject) => {
      const seen = this.events.find(test);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`slixmpp event not seen; events: ${JSON.stringify(this.events)} stderr: ${this.stderr}`)), timeoutMs);
      this.waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }

  /** Resolves with the exit code once the script has exited. */
  exited(): Promise<number | null> {
    return this.exit;
  }
}
