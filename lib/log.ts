// One pino logger per process: JSON, one line an event, the process named in
// every line. Children add the session (`sid`, `jid`) or peer in context.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(proc: string, level = process.env.XFARM_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { proc, pid: process.pid } });
}
