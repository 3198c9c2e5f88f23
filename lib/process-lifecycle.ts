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
