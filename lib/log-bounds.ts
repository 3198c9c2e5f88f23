// What a log line may cost when a peer chooses what it says and how often:
// a value it sent is cut to a readable length, and an event it can repeat at
// will writes one line now and then, counting the others.

/** Longest text a peer chose (a name, a domain) that a log line shows. */
export const LOG_TEXT_MAX = 64;

/** `text` cut to LOG_TEXT_MAX characters, saying how long it was when cut. */
export function clipForLog(text: string | undefined | null): string | undefined {
  if (text === undefined || text === null) return undefined;
  return text.length <= LOG_TEXT_MAX ? text : `${text.slice(0, LOG_TEXT_MAX)}… (${text.length} characters)`;
}

/** One line per interval for an event that may come in floods; the next line says how many were left out. */
export class LogThrottle {
  private last = -Infinity;
  private unlogged = 0;

  constructor(private readonly intervalMs: number) {}

  /** How many events went unlogged before this one if it is to be logged now, else null (and it is counted). */
  take(now = Date.now()): number | null {
    if (now - this.last < this.intervalMs) {
      this.unlogged++;
      return null;
    }
    this.last = now;
    const n = this.unlogged;
    this.unlogged = 0;
    return n;
  }
}
