// CONTROL frame bodies (docs/protocol.md §1.3, §1.4).
import type { Member } from "./member.js";

export type ControlMessage =
  | { op: "members"; members: Member[] }
  | { op: "ping"; id: number }
  | { op: "pong"; id: number }
  | { op: "undeliverable"; to: string; key: string };

/** How often each side pings, and how long a silent link lives. */
export const PING_INTERVAL_MS = 5_000;
export const SILENCE_LIMIT_MS = 15_000;
