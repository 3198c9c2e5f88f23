// CONTROL frame bodies (docs/protocol.md §1.3, §1.4, §1.6).
import { memberShape, type Member } from "./member.js";
import { arrayOf, boolean, count, isObject, nullable, number, object, oneOf, optional, parseJson, recordOf, string, type Shape } from "./shape.js";

/**
 * A process's live load, as it reports it (protocol §1.6): every front end
 * and sm. The fields after `peers` came later: a process of an earlier
 * version leaves them out.
 */
export interface ProcessLoad {
  /** Authenticated client sessions (an sm: the sessions it holds). */
  sessions: number;
  /** Open client connections, authenticated or not (an sm: 0; the router's own row: its links). */
  connections: number;
  /** Event-loop delay, 99th percentile over the last report period, in ms: how busy the process is. */
  lag: number;
  /** Clients read slowly at the moment, over their rate (c2s.rate_*); absent from older front ends. */
  throttled?: number;
  /** Login attempts the front end holds now because of earlier failures (c2s/login-throttle.ts). */
  delayedLogins?: number;
  /** Other front ends whose load this one has heard (from `loads`): those it may redirect clients to. */
  peers?: number;
  pid?: number;
  /** os.hostname() of its box. */
  host?: string;
  /** Resident set size, bytes. */
  rss?: number;
  /** CPU time over the last report period, as a fraction of one core. */
  cpu?: number;
  /** V8 heap used, bytes. */
  heap?: number;
  /** When the process started, ms since the epoch. */
  started?: number;
  /** Successful logins since it started (a front end). */
  logins?: number;
  /** Message stanzas since it started: read from clients (a front end), routed (an sm). */
  messages?: number;
  /** A draining front end: when its drain began (ms since the epoch), and the clients it has moved off since. */
  drainStarted?: number;
  drainMoved?: number;
  /** A front end: clients a peer redirected here that have not logged in here yet (§1.6 `expect`). */
  expecting?: number;
  /** A front end: `expect` notices it got since it started, by the front end that sent each. */
  heard?: Record<string, number>;
}

/** The name the front ends' load went by before the sms reported theirs. */
export type C2sLoad = ProcessLoad;

/** How an admin's order went: what the `result` op carries. */
export interface AdminResult {
  ok: boolean;
  error?: string;
}

/** One row of `xfarm status`: a linked process as the router sees it, or the router itself. */
export interface StatusEntry {
  name: string;
  role: string;
  /** The peer address of its link (the router's own row: the address it listens on). */
  peer: string;
  info: Record<string, unknown>;
  load: ProcessLoad | null;
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
  /** A component's new `info` (e.g. a front end that starts draining or turns full). */
  | { op: "info"; info: Record<string, unknown> }
  /**
   * A front end sent this client to front end `to`, which should serve it (forwarded by the router);
   * `plain`, base64, vouches for the password of a client that logged in with PLAIN (plainVoucher()).
   */
  | { op: "expect"; to: string; ip: string; user: string; plain?: string; from?: string }
  // Admin links (`xfarm status`, `xfarm c2s drain`, `undrain`), protocol §1.7.
  | { op: "status-request" }
  /**
   * `active`: false from the passive router of a pair, which holds no farm (absent from routers before it was sent);
   * `self`: the router's own row (role "router"), absent from routers before it was sent.
   */
  | { op: "status"; router: string; active?: boolean; self?: StatusEntry; entries: StatusEntry[] }
  /** admin → router: which farm is this (`xfarm user …` checks it uses the farm's database). */
  | { op: "describe" }
  /** router → admin: its name, the domains served and the database (describeStore: no password), if it knows it. */
  | { op: "farm"; router: string; domains: string[]; db?: string }
  /** admin → router: drain front end `name`; router → that front end: start draining, moving `rate` clients a second. */
  | { op: "drain"; name: string; rate: number }
  /** admin → router: put a drained front end back; router → that front end: take clients again. */
  | { op: "undrain"; name: string }
  /** Active router → its pair peer: every drained front end and its rate, so a failover keeps them drained. */
  | { op: "drained"; fronts: Record<string, number> }
  | ({ op: "result" } & AdminResult)
  /** admin → router → every sm: an account was renamed (`xfarm user rename`); the old name's sessions end. */
  | { op: "user-deleted"; user: string }
  /** admin → router → every sm: an account's password changed (`xfarm user passwd`); its sessions end with `reset`. */
  | { op: "user-password-changed"; user: string }
  /** admin → router: delete an account on the running farm (`xfarm user del`), answered with `result`. */
  | { op: "user-delete"; user: string }
  /**
   * router → sm: end the sessions of `user` held here (their contacts see them go unavailable);
   * with `remove`, then cancel the contacts' subscriptions and delete the account from the store.
   */
  | { op: "delete-account"; id: number; user: string; remove: boolean }
  /** router → every sm (the admin console): send `body` as a headline message from the domain to every online session held here. */
  | { op: "announce"; body: string }
  /** sm → router: how `delete-account` number `id` went. */
  | { op: "account-deleted"; id: number; ok: boolean; error?: string }
  /** Between the routers of a pair: the sender's state, sent at link-up and on every change. */
  | { op: "router-state"; active: boolean };

/** How often each side pings, and how long a silent link lives. */
export const PING_INTERVAL_MS = 2_000;
export const SILENCE_LIMIT_MS = 6_000;
/** Clients a second a drain moves when no rate is given (`xfarm c2s drain`, a front end adopted as draining). */
export const DEFAULT_DRAIN_RATE = 50;

/** How often a front end and an sm report their load to the router. */
export const LOAD_REPORT_MS = 2_000;

/** How often the router shares the load table with the front ends. */
export const LOADS_INTERVAL_MS = 1_000;

const nonNegative = (v: unknown): v is number => number(v) && v >= 0;
const loadFields = {
  sessions: count,
  connections: count,
  lag: nonNegative,
  throttled: optional(count),
  delayedLogins: optional(count),
  peers: optional(count),
  pid: optional(count),
  host: optional(string),
  rss: optional(count),
  cpu: optional(nonNegative),
  heap: optional(count),
  started: optional(count),
  logins: optional(count),
  messages: optional(count),
  drainStarted: optional(count),
  drainMoved: optional(count),
  expecting: optional(count),
  heard: optional(recordOf(count)),
};
const loadShape: Shape<ProcessLoad> = object(loadFields);
const entryShape: Shape<StatusEntry> = object({ name: string, role: string, peer: string, info: isObject, load: nullable(loadShape), linkedAt: count, queued: count });
/** A drain's clients a second: a whole number from 1. */
const rate = (v: unknown): v is number => count(v) && v > 0;

/** A message of one op with these other fields. */
function message<Op extends ControlMessage["op"], P extends Record<string, Shape<unknown>>>(op: Op, props: P) {
  return object({ op: oneOf(op), ...props });
}

/** The shape of each op's message; an op not here is one of a later version, which receivers ignore. */
const CONTROL_SHAPES: { [Op in ControlMessage["op"]]: Shape<Extract<ControlMessage, { op: Op }>> } = {
  members: message("members", { members: arrayOf(memberShape) }),
  ping: message("ping", { id: count }),
  pong: message("pong", { id: count }),
  undeliverable: message("undeliverable", { to: string, key: string }),
  load: message("load", loadFields),
  loads: message("loads", { loads: recordOf(loadShape) }),
  info: message("info", { info: isObject }),
  expect: message("expect", { to: string, ip: string, user: string, plain: optional(string), from: optional(string) }),
  "status-request": message("status-request", {}),
  status: message("status", { router: string, active: optional(boolean), self: optional(entryShape), entries: arrayOf(entryShape) }),
  describe: message("describe", {}),
  farm: message("farm", { router: string, domains: arrayOf(string), db: optional(string) }),
  drain: message("drain", { name: string, rate }),
  undrain: message("undrain", { name: string }),
  drained: message("drained", { fronts: recordOf(rate) }),
  result: message("result", { ok: boolean, error: optional(string) }),
  "user-deleted": message("user-deleted", { user: string }),
  "user-password-changed": message("user-password-changed", { user: string }),
  "user-delete": message("user-delete", { user: string }),
  "delete-account": message("delete-account", { id: count, user: string, remove: boolean }),
  announce: message("announce", { body: string }),
  "account-deleted": message("account-deleted", { id: count, ok: boolean, error: optional(string) }),
  "router-state": message("router-state", { active: boolean }),
};

const opShape = object({ op: string });

/**
 * A CONTROL frame's message, its shape checked for the ops this version
 * knows; throws when it does not fit. An unknown op comes back as it is,
 * for the receiver to ignore (protocol §1.3).
 */
export function parseControl(body: Buffer): ControlMessage {
  const msg = parseJson(body, opShape, "CONTROL");
  const shape = Object.hasOwn(CONTROL_SHAPES, msg.op) ? (CONTROL_SHAPES[msg.op as ControlMessage["op"]] as Shape<ControlMessage>) : undefined;
  if (shape && !shape(msg)) throw new Error(`CONTROL "${msg.op}" has the wrong shape`);
  return msg as ControlMessage;
}
