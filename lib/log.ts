// One pino logger per process, the process named in every line; children add
// the session (`sid`, `jid`) or peer in context. For machines: one JSON object
// a line, the level by name and the time in ISO 8601. For people at a
// terminal: the same lines made readable by pino-pretty, in pino's transport
// thread (log_format: "auto" picks by whether stdout is a terminal).
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export function createLogger(proc: string, level = process.env.XFARM_LOG_LEVEL ?? "info", format: string = "auto"): Logger {
  const options: LoggerOptions = {
    level,
    base: { proc, pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const pretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  if (!pretty) return pino(options);
  return pino({ ...options, transport: { target: "pino-pretty", options: { destination: 1, translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l", ignore: "pid,hostname" } } });
}
