// CONTROL frame bodies (docs/protocol.md §1.3, §1.4, §1.6).
import type { Member } from "./member.js";

/** A front end's live load, as it reports it (protocol §1.6). */
export interface C2sLoad {
  /** Authenticated client sessions. */
  sessions: number;
  /** Open client connections, authenticated or not. */
  connections: number;
  /** Event-loop delay, 99th percentile over the last report period, in ms: how busy the process is. */
  lag: number;
  /** Clients read slowly at the moment, over their rate (c2s.rate_*); absent from older front ends. */
  throttled?: number;
  /** Login attempts the front end holds now because of earlier failures (c2s/login-throttle.ts). */
  delayedLogins?: number;
}

/** One row of `xfarm status`: a linked process as the router sees it. */
export interface StatusEntry {
  name: string;
  role: string;
  /** The peer address of its link. */
  peer: string;
  info: Record<string, unknown>;
  load: C2sLoad | null;
  /** When it linked to this router (ms since the epoch). */
  linkedAt: number;
  /** Bytes the router has waiting to be written to it (backpressure, protocol §1.10). */
  queued: number;
}

export type ControlMessage =
  | { op: "members"; members: Member[] }
  | { op: "ping"; id: number }
  | { op: "pong"; id: number }
  | { op: "undeliverable"; to: string; key: string }
  | ({ op: "load" } & C2sLoad)
  | { op: "loads"; loads: Record<string, C2sLoad> }
  /** A component's new `info` (e.g. a front end that starts draining). */
  | { op: "info"; info: Record<string, unknown> }
  /**
   * A front end sent this client to front end `to`, which should serve it (forwarded by the router);
   * `plain`, base64, vouches for the password of a client that logged in with PLAIN (plainVoucher()).
   */
  | { op: "expect"; to: string; ip: string; user: string; plain?: string }
  // Admin links (`xfarm status`, `xfarm c2s drain`), protocol §1.7.
  | { op: "status-request" }
  | { op: "status"; router: string; entries: StatusEntry[] }
  /** admin → router: drain front end `name`; router → that front end: start draining. */
  | { op: "drain"; name: string; rate: number }
  | { op: "result"; ok: boolean; error?: string }
  /** admin → router → every sm: an account was deleted; its sessions end. */
  | { op: "user-deleted"; user: string }
  /** Between the routers of a pair: the sender's state, sent at link-up and on every change. */
  | { op: "router-state"; active: boolean };

/** How often each side pings, and how long a silent link lives. */
export const PING_INTERVAL_MS = 2_000;
export const SILENCE_LIMIT_MS = 6_000;
/** How often the router shares the load table with the front ends. */
export const LOADS_INTERVAL_MS = 1_000;
