// How every xfarm process ends: on SIGINT or SIGTERM it closes what it
// holds, logs, and exits. A signal more than two seconds after the first
// exits at once; sooner, it is the same request (Ctrl-C in a terminal
// reaches a child both directly and through the supervisor).
import type { Logger } from "./log.js";

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

/**
 * A start-up failure that a restart will not fix (a port in use, a bad
 * certificate, a wrong secret, an unreachable database): one fatal line
 * naming the config key to fix, the same over IPC to the supervisor when it
 * spawned this process (deploy/supervisor.ts gives up on a child that fails
 * so three times running), and exit code 78 (EX_CONFIG).
 */
export function failStartup(log: Logger, key: string, message: string): never {
  log.fatal({ key }, message);
  // A pipe write that finds the channel empty is written at once: it is out before the exit.
  process.send?.({ type: "startup-failure", key, message });
  process.exit(78);
}
