// How every xfarm process starts and ends. At start it takes its name as its
// title (`ps` shows `xfarm c2s-2`), every error it meets becomes a log line,
// and a failure a restart will not fix stops it with one fatal line naming
// the config key to fix and exit code 78 (EX_CONFIG), so that a supervisor
// stops restarting it. On SIGINT or SIGTERM it closes what it holds, logs,
// and exits. A signal more than two seconds after the first exits at once;
// sooner, it is the same request (Ctrl-C in a terminal reaches a child both
// directly and through the supervisor).
import type { Logger } from "./log.js";

/** sysexits.h's EX_CONFIG: what a process that cannot start as configured exits with. */
export const EX_CONFIG = 78;

/** What a process tells its supervisor over IPC before it exits with EX_CONFIG. */
export interface StartupFailureMessage {
  type: "startup-failure";
  key: string;
  message: string;
}

/** A start-up failure a restart will not fix; `key` is the config key to fix (e.g. "c2s.port", `secrets."sm-1"`, "db"). */
export class StartupFailure extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Ends a process that cannot start: one fatal line naming `key`, the same to
 * the supervisor when spawned with an IPC channel, exit code 78. The IPC
 * write to an empty pipe is done at once by libuv, so exiting right after
 * does not lose it.
 */
export function failStartup(log: Logger, key: string, message: string): never {
  log.fatal({ key }, message);
  if (process.send) process.send({ type: "startup-failure", key, message } satisfies StartupFailureMessage);
  process.exit(EX_CONFIG);
}

/** A config that cannot be used (loadConfig's and the sm modules' errors) as a StartupFailure naming the key its message names, else "config". */
export function configFailure(err: unknown): StartupFailure {
  const message = (err as Error).message;
  const key = /\bconfig (?:key )?([a-z_][\w.-]*)/.exec(message)?.[1] ?? "config";
  return new StartupFailure(key, message);
}

/** Error codes of a listen that a restart will not fix: the port is another process's, or not this user's, or the address not this box's. */
const LISTEN_CONFIG_ERRORS = new Set(["EADDRINUSE", "EACCES", "EADDRNOTAVAIL"]);

/** A failed listen on the port of config key `key`: a StartupFailure when the config must change, else the error itself. */
export function listenFailure(key: string, port: number, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined || !LISTEN_CONFIG_ERRORS.has(code)) return err;
  const why = code === "EADDRINUSE" ? "is in use by another process" : code === "EACCES" ? "is not allowed to this user" : "is on an address this host does not have";
  return new StartupFailure(key, `cannot listen on ${key} = ${port}: the port ${why} (${code})`);
}

/**
 * Runs a process's start-up as process `name` (its title `xfarm NAME`), each
 * of its errors a fatal log line: a StartupFailure through failStartup, any
 * other (a bug, which a restart may get past) with exit code 1; so is an
 * uncaught exception or unhandled rejection later. `logger` is asked for a
 * logger only then, so a process that logs through another (the supervisor)
 * makes this one only to say why it ends.
 */
export async function runProcess(name: string, logger: () => Logger, start: () => Promise<void>): Promise<void> {
  process.title = `xfarm ${name}`;
  const fatal = (err: unknown, msg: string) => {
    logger().fatal({ err }, msg);
    process.exit(1);
  };
  process.on("uncaughtException", (err) => fatal(err, "uncaught exception"));
  process.on("unhandledRejection", (err) => fatal(err, "unhandled rejection"));
  try {
    await start();
  } catch (err) {
    if (err instanceof StartupFailure) failStartup(logger(), err.key, err.message);
    fatal(err, `could not start: ${(err as Error).message}`);
  }
}

export function stopOnSignals(log: Logger, close: () => Promise<void>): void {
  let stoppingSince = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppingSince) {
      if (Date.now() - stoppingSince > 2_000) process.exit(1);
      return;
    }
    stoppingSince = Date.now();
    log.info({ signal }, "stopping");
    close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

