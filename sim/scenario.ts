// A simulator scenario: which server, which users, how they arrive and what
// each does once logged in. Read from a TOML file (docs/sim.md documents
// every key) and/or built from command-line flags; checked here once, so the
// workers get a complete, valid plan.
import fs from "node:fs";
import { parse as parseToml } from "smol-toml";
import { plannedArrivals, type Interarrival, type Spread } from "./arrivals.js";
import { expandSources, loopbackRefusal } from "./loopback.js";

export type Security = "none" | "starttls" | "direct";
export type Mechanism = "PLAIN" | "SCRAM-SHA-1" | "SCRAM-SHA-256";
export type Redirects = "follow" | "ignore";

export type Action =
  /** Fetch the roster (jabber:iq:roster get) and wait for the result. */
  | { type: "roster" }
  /** Send initial presence; from then on the user counts as online for chat targets. */
  | { type: "presence" }
  /** Say XEP-0352 <inactive/>: the server may hold back what the client need not see at once. */
  | { type: "inactive" }
  /** Enable XEP-0198; answer the server's <r/>, ask for acks every `request_every` stanzas sent (0: never). */
  | { type: "sm"; resume: boolean; request_every: number }
  /** Do nothing for `seconds` (exponentially distributed around it when `random`); keepalives go on. */
  | { type: "think"; seconds: number; random: boolean }
  /** Send chat messages, stamped, to random online users (or to offline accounts), `rate` per second. */
  | { type: "chat"; to: "online" | "offline"; rate: number; total_rate: number; duration: number; count: number; size: number }
  /** Wait until every user still running is here and every message sent to an online user has arrived (or `timeout`). */
  | { type: "sync"; timeout: number }
  /** Close the stream (the end of the list closes it too). */
  | { type: "close" };

export interface Scenario {
  server: {
    host: string;
    /** The server's ports; user k first connects to one of them, as `spread` says. */
    ports: number[];
    /** "turn": user k to ports[k % n] (round-robin DNS); "random": each user's own seeded draw (SRV records of equal weight). */
    spread: Spread;
    domain: string;
    security: Security;
    mechanism: Mechanism;
    /** PEM file of a CA to verify the server's certificate with; without it the certificate is not checked. */
    ca: string;
    /** Local addresses to connect from, expanded; empty: the system's choice. */
    sources: string[];
  };
  users: {
    count: number;
    first: number;
    name: string;
    password: string;
    /** Accounts that exist (first … first+accounts-1), for offline targets; >= count. */
    accounts: number;
  };
  arrival: { rate: number; duration: number }[];
  session: {
    /** Resource to ask for at bind; empty: the server's choice. */
    resource: string;
    /** Seconds of silence after which a whitespace keepalive is sent; 0: none. */
    keepalive: number;
    login_timeout: number;
    max_redirects: number;
    /** Seconds to wait for the server's answer to a roster get, an SM enable. */
    reply_timeout: number;
    /**
     * "follow": connect where <see-other-host/> says (xmpp.js, slixmpp).
     * "ignore": as Smack, Conversations, Gajim and libstrophe do, treat it and
     * any lost connection as a reason to reconnect through the client's own
     * port list, starting with the port it had.
     */
    redirects: Redirects;
    /**
     * A client that follows redirects also reconnects after losing its
     * session (as "ignore" does, through its port list) instead of giving up.
     */
    reconnect: boolean;
    /** Seconds: before reconnecting after a lost session, wait a random time, uniform in 0 … this (0: at once). */
    reconnect_delay: number;
  };
  actions: Action[];
  run: {
    /** Hard limit: every user still connected is closed then. */
    duration: number;
    workers: number;
    interarrival: Interarrival;
    seed: number;
  };
}

export const SECURITIES: readonly Security[] = ["none", "starttls", "direct"];
export const MECHANISMS: readonly Mechanism[] = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"];
export const REDIRECTS: readonly Redirects[] = ["follow", "ignore"];
export const SPREADS: readonly Spread[] = ["turn", "random"];
/** Users in one run at most. */
export const MAX_USERS = 1_000_000;
/** Seconds one run may last at most. */
export const MAX_DURATION = 86_400;

export function defaultScenario(): Scenario {
  return {
    server: { host: "127.0.0.1", ports: [5222], spread: "turn", domain: "localhost", security: "starttls", mechanism: "PLAIN", ca: "", sources: [] },
    users: { count: 100, first: 1, name: "user%d", password: "pass%d", accounts: 0 },
    arrival: [{ rate: 100, duration: 1 }],
    session: { resource: "", keepalive: 0, login_timeout: 30, max_redirects: 5, reply_timeout: 30, redirects: "follow", reconnect: false, reconnect_delay: 0 },
    actions: [{ type: "roster" }, { type: "presence" }],
    run: { duration: 600, workers: 1, interarrival: "uniform", seed: 1 },
  };
}

type Table = Record<string, unknown>;

class Reader {
  constructor(
    private readonly t: Table,
    private readonly where: string,
  ) {}

  private used = new Set<string>();

  private get(key: string): unknown {
    this.used.add(key);
    return this.t[key];
  }

  has(key: string): boolean {
    return this.t[key] !== undefined;
  }

  path(key: string): string {
    return this.where ? `${this.where}.${key}` : key;
  }

  num(key: string, dflt: number, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
    const v = this.get(key);
    if (v === undefined) return dflt;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) throw new Error(`${this.path(key)} must be a number`);
    if (opts.integer && !Number.isInteger(n)) throw new Error(`${this.path(key)} must be an integer`);
    if (opts.min !== undefined && n < opts.min) throw new Error(`${this.path(key)} must be at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw new Error(`${this.path(key)} must be at most ${opts.max}`);
    return n;
  }

  /** A number or a non-empty list of numbers. */
  nums(key: string, dflt: number[], opts: { integer?: boolean; min?: number; max?: number } = {}): number[] {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (!Array.isArray(v)) return [this.num(key, 0, opts)];
    if (v.length === 0) throw new Error(`${this.path(key)} must not be an empty list`);
    return v.map((_, i) => new Reader(v as unknown as Table, this.path(key)).num(String(i), 0, opts));
  }

  str(key: string, dflt: string): string {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (typeof v !== "string") throw new Error(`${this.path(key)} must be a string`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (typeof v !== "boolean") throw new Error(`${this.path(key)} must be true or false`);
    return v;
  }

  oneOf<T extends string>(key: string, dflt: T, allowed: readonly T[]): T {
    const v = this.str(key, dflt);
    const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (!hit) throw new Error(`${this.path(key)} must be one of ${allowed.join(", ")} (not "${v}")`);
    return hit;
  }

  strings(key: string, dflt: string[]): string[] {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (typeof v === "string") return [v];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new Error(`${this.path(key)} must be a string or a list of strings`);
    return v as string[];
  }

  table(key: string): Reader {
    const v = this.get(key);
    if (v === undefined) return new Reader({}, this.path(key));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`[${this.path(key)}] must be a table`);
    return new Reader(v as Table, this.path(key));
  }

  tables(key: string): Reader[] | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "object" && x !== null && !Array.isArray(x))) {
      throw new Error(`${this.path(key)} must be a list of tables ([[${this.path(key)}]])`);
    }
    return (v as Table[]).map((t, i) => new Reader(t, `${this.path(key)}[${i}]`));
  }

  /** Throws on keys nobody asked for: a typo must not pass silently. */
  done(): void {
    const unknown = Object.keys(this.t).filter((k) => !this.used.has(k));
    if (unknown.length) throw new Error(`unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => this.path(k)).join(", ")}`);
  }
}

function readAction(r: Reader): Action {
  const type = r.str("type", "");
  let a: Action;
  switch (type) {
    case "roster":
    case "presence":
    case "inactive":
    case "close":
      a = { type };
      break;
    case "sm":
      a = { type, resume: r.bool("resume", false), request_every: r.num("request_every", 0, { integer: true, min: 0 }) };
      break;
    case "think":
    case "idle":
    case "hold":
      a = { type: "think", seconds: r.num("seconds", 0, { min: 0, max: MAX_DURATION }), random: r.bool("random", false) };
      break;
    case "chat": {
      const perUser = r.has("rate");
      const total = r.has("total_rate");
      if (perUser === total) throw new Error(`${r.path("rate")}: give a chat action either rate (per user) or total_rate (all users together)`);
      const rate = perUser ? r.num("rate", 0, { min: 0.0001, max: 10_000 }) : 0;
      const total_rate = total ? r.num("total_rate", 0, { min: 0.0001, max: 10_000_000 }) : 0;
      const duration = r.num("duration", 0, { min: 0, max: MAX_DURATION });
      const count = r.num("count", 0, { integer: true, min: 0 });
      if (!duration && !count) throw new Error(`${r.path("duration")}: a chat action needs a duration (seconds) or a count (messages)`);
      a = { type, to: r.oneOf("to", "online", ["online", "offline"] as const), rate, total_rate, duration, count, size: r.num("size", 100, { integer: true, min: 40, max: 65_536 }) };
      break;
    }
    case "sync":
      a = { type, timeout: r.num("timeout", 30, { min: 0, max: MAX_DURATION }) };
      break;
    default:
      throw new Error(`${r.path("type")} must be one of roster, presence, inactive, sm, think (or idle, hold), chat, sync, close (not "${type}")`);
  }
  r.done();
  return a;
}

/** Reads a scenario table (parsed TOML) on top of the defaults. */
export function scenarioFromTable(root: Table): Scenario {
  const d = defaultScenario();
  const r = new Reader(root, "");
  const sv = r.table("server");
  const server: Scenario["server"] = {
    host: sv.str("host", d.server.host),
    ports: sv.nums("port", d.server.ports, { integer: true, min: 1, max: 65535 }),
    spread: sv.oneOf("spread", d.server.spread, SPREADS),
    domain: sv.str("domain", d.server.domain),
    security: sv.oneOf("security", d.server.security, SECURITIES),
    mechanism: sv.oneOf("mechanism", d.server.mechanism, MECHANISMS),
    ca: sv.str("ca", ""),
    sources: sv.strings("sources", []),
  };
  sv.done();
  const u = r.table("users");
  const users: Scenario["users"] = {
    count: u.num("count", d.users.count, { integer: true, min: 1, max: MAX_USERS }),
    first: u.num("first", d.users.first, { integer: true, min: 0 }),
    name: u.str("name", d.users.name),
    password: u.str("password", d.users.password),
    accounts: u.num("accounts", 0, { integer: true, min: 0, max: MAX_USERS }),
  };
  u.done();
  const phases = r.tables("arrival");
  const arrival = phases
    ? phases.map((p) => {
        const a = { rate: p.num("rate", 0, { min: 0, max: 1_000_000 }), duration: p.num("duration", 0, { min: 0, max: MAX_DURATION }) };
        p.done();
        return a;
      })
    : d.arrival;
  const se = r.table("session");
  const session: Scenario["session"] = {
    resource: se.str("resource", d.session.resource),
    keepalive: se.num("keepalive", d.session.keepalive, { min: 0, max: 3600 }),
    login_timeout: se.num("login_timeout", d.session.login_timeout, { min: 0.1, max: 3600 }),
    max_redirects: se.num("max_redirects", d.session.max_redirects, { integer: true, min: 0, max: 100 }),
    reply_timeout: se.num("reply_timeout", d.session.reply_timeout, { min: 0.1, max: 3600 }),
    redirects: se.oneOf("redirects", d.session.redirects, REDIRECTS),
    reconnect: se.bool("reconnect", d.session.reconnect),
    reconnect_delay: se.num("reconnect_delay", d.session.reconnect_delay, { min: 0, max: 3600 }),
  };
  se.done();
  const acts = r.tables("actions");
  const actions = acts ? acts.map(readAction) : d.actions;
  const ru = r.table("run");
  const run: Scenario["run"] = {
    duration: ru.num("duration", d.run.duration, { min: 1, max: MAX_DURATION }),
    workers: ru.num("workers", d.run.workers, { integer: true, min: 0, max: 64 }),
    interarrival: ru.oneOf("interarrival", d.run.interarrival, ["uniform", "poisson"] as const),
    seed: ru.num("seed", d.run.seed, { integer: true, min: 0 }),
  };
  ru.done();
  r.done();
  return finish({ server, users, arrival, session, actions, run });
}

export function loadScenarioFile(file: string): Scenario {
  return readScenarioFile(file).scenario;
}

/** The scenario in `file`, whether it lists its own actions, and which [server] keys it sets. */
export function readScenarioFile(file: string): { scenario: Scenario; hasActions: boolean; serverKeys: string[] } {
  let table: Table;
  try {
    table = parseToml(fs.readFileSync(file, "utf8")) as Table;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  try {
    const server = table.server;
    const serverKeys = server && typeof server === "object" && !Array.isArray(server) ? Object.keys(server) : [];
    return { scenario: scenarioFromTable(table), hasActions: table.actions !== undefined, serverKeys };
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

/** Checks what crosses sections, expands sources, and fills derived values. Returns the same object. */
export function finish(s: Scenario): Scenario {
  const refusal = loopbackRefusal(s.server.host);
  if (refusal) throw new Error(refusal);
  s.server.sources = expandSources(s.server.sources);
  if (!s.server.domain) throw new Error("server.domain is empty");
  if (!s.users.name.includes("%d")) throw new Error(`users.name "${s.users.name}" must contain %d (the user's number)`);
  if (!s.users.password) throw new Error("users.password is empty");
  if (s.users.accounts === 0) s.users.accounts = s.users.count;
  if (s.users.accounts < s.users.count) throw new Error(`users.accounts (${s.users.accounts}) is less than users.count (${s.users.count})`);
  if (!s.arrival.length || s.arrival.every((p) => p.rate * p.duration < 1)) throw new Error("the arrival phases bring no user (rate × duration < 1)");
  const planned = plannedArrivals(s);
  let online = false;
  for (const a of s.actions) {
    // A total rate is shared by every user the run brings (Tsung's way: each sends every users/rate seconds).
    if (a.type === "chat" && a.total_rate > 0) a.rate = a.total_rate / planned;
    if (a.type === "presence") online = true;
    if (a.type === "chat" && a.to === "online" && !online) {
      throw new Error('a chat action to online users must come after a presence action (messages go to bare JIDs, which only reach available resources)');
    }
  }
  return s;
}

/** The user name for number n (users.name with %d replaced). */
export function userName(pattern: string, n: number): string {
  return pattern.replace(/%d/g, String(n));
}
