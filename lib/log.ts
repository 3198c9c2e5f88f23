// One pino logger per process, the process named in every line; children add
// the session (`sid`, `jid`) or peer in context. For machines: one JSON object
// a line, the level by name and the time in ISO 8601. For people at a
// terminal: the same lines made readable by pino-pretty, in pino's transport
// thread (log_format: "auto" picks by whether stdout is a terminal).
//
// JSON lines are written synchronously. pino's default stdout is asynchronous:
// a line whose write is still on libuv's threads when the process exits (a
// fatal start-up failure, a crash) lands after the lines flushed at exit, or
// never. A synchronous write costs the same CPU a line (6-7 µs both ways,
// measured to a pipe), and stdout is never touched as a stream, which would
// make a shared pipe non-blocking and turn a slow reader into busy retries.
import { isatty } from "node:tty";
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
  const pretty = format === "pretty" || (format === "auto" && isatty(1));
  if (!pretty) return pino(options, pino.destination({ dest: 1, sync: true }));
  return pino({ ...options, transport: { target: "pino-pretty", options: { destination: 1, translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l", ignore: "pid,hostname" } } });
}
