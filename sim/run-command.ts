// Runs a command to its end and keeps what it printed: the CLI against a
// local farm (local-farm.ts), and the scripts in tests. It resolves on
// "close", not "exit": a process can have exited while its pipes still hold
// output for the reader.
import { spawn } from "node:child_process";

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  cwd?: string;
  /** The whole environment; the test's own by default. */
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin, which then ends (empty by default). */
  stdin?: string;
}

export function runCommand(file: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(opts.stdin ?? "");
  });
}
