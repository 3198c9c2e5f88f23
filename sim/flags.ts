// `xfarm sim`'s flags: the common case without a scenario file, or
// overrides of a file's server, users, arrival, session and run keys.
import { defaultScenario, finish, MECHANISMS, REDIRECTS, SECURITIES, SPREADS, type Action, type Scenario } from "./scenario.js";

/** The flags as commander gives them (strings, booleans). */
export interface SimFlags {
  host?: string;
  port?: string;
  spread?: string;
  domain?: string;
  security?: string;
  mechanism?: string;
  ca?: string;
  sources?: string;
  users?: string;
  first?: string;
  name?: string;
  password?: string;
  accounts?: string;
  rate?: string;
  ramp?: string;
  arrival?: string;
  interarrival?: string;
  seed?: string;
  workers?: string;
  duration?: string;
  keepalive?: string;
  resource?: string;
  loginTimeout?: string;
  reconnect?: string;
  redirects?: string;
  // Actions.
  sm?: boolean;
  smResume?: boolean;
  roster?: boolean;
  presence?: boolean;
  chatRate?: string;
  chatTotalRate?: string;
  chatDuration?: string;
  chatCount?: string;
  chatSize?: string;
  chatTo?: string;
  hold?: string;
}

const ACTION_FLAGS: (keyof SimFlags)[] = ["sm", "smResume", "chatRate", "chatTotalRate", "chatDuration", "chatCount", "chatSize", "chatTo", "hold"];

function num(name: string, v: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name} must be a number (not "${v}")`);
  if (opts.integer && !Number.isInteger(n)) throw new Error(`--${name} must be an integer`);
  if (opts.min !== undefined && n < opts.min) throw new Error(`--${name} must be at least ${opts.min}`);
  if (opts.max !== undefined && n > opts.max) throw new Error(`--${name} must be at most ${opts.max}`);
  return n;
}

function pick<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (!hit) throw new Error(`--${name} must be one of ${allowed.join(", ")} (not "${v}")`);
  return hit;
}

/** "100x10,50x20": 100/s for 10 s, then 50/s for 20 s. */
export function parsePhases(text: string): { rate: number; duration: number }[] {
  return text.split(",").map((p) => {
    const m = /^\s*([\d.]+)\s*[x*@]\s*([\d.]+)\s*s?\s*$/.exec(p);
    if (!m) throw new Error(`--arrival phase "${p}" is not RATExSECONDS (e.g. 100x10)`);
    return { rate: Number(m[1]), duration: Number(m[2]) };
  });
}

/**
 * The scenario to run: `base` (from a file, or null) with the flags applied.
 * Action flags build the action list; they cannot be combined with a file's.
 */
export function applyFlags(base: Scenario | null, f: SimFlags, fileHasActions = false): Scenario {
  const s = base ? (structuredClone(base) as Scenario) : defaultScenario();
  if (f.host !== undefined) s.server.host = f.host;
  if (f.port !== undefined) s.server.ports = f.port.split(",").map((p) => num("port", p.trim(), { integer: true, min: 1, max: 65535 }));
  if (f.spread !== undefined) s.server.spread = pick("spread", f.spread, SPREADS);
  if (f.domain !== undefined) s.server.domain = f.domain;
  if (f.security !== undefined) s.server.security = pick("security", f.security, SECURITIES);
  if (f.mechanism !== undefined) s.server.mechanism = pick("mechanism", f.mechanism, MECHANISMS);
  if (f.ca !== undefined) s.server.ca = f.ca;
  if (f.sources !== undefined) s.server.sources = f.sources.split(",").map((x) => x.trim()).filter(Boolean);
  if (f.users !== undefined) s.users.count = num("users", f.users, { integer: true, min: 1 });
  if (f.first !== undefined) s.users.first = num("first", f.first, { integer: true, min: 0 });
  if (f.name !== undefined) s.users.name = f.name;
  if (f.password !== undefined) s.users.password = f.password;
  if (f.accounts !== undefined) s.users.accounts = num("accounts", f.accounts, { integer: true, min: 1 });
  else if (f.users !== undefined && base && s.users.accounts < s.users.count) s.users.accounts = 0;
  if (f.arrival !== undefined) {
    if (f.rate !== undefined || f.ramp !== undefined) throw new Error("give --arrival, or --rate (and --ramp), not both");
    s.arrival = parsePhases(f.arrival);
  } else if (f.rate !== undefined || f.ramp !== undefined || (!base && f.users !== undefined)) {
    const rate = f.rate !== undefined ? num("rate", f.rate, { min: 0.001 }) : (s.arrival[0]?.rate ?? 100);
    // By default the phase lasts as long as it takes to bring every user.
    const ramp = f.ramp !== undefined ? num("ramp", f.ramp, { min: 0.001 }) : s.users.count / rate;
    s.arrival = [{ rate, duration: ramp }];
  }
  if (f.interarrival !== undefined) s.run.interarrival = pick("interarrival", f.interarrival, ["uniform", "poisson"] as const);
  if (f.seed !== undefined) s.run.seed = num("seed", f.seed, { integer: true, min: 0 });
  if (f.workers !== undefined) s.run.workers = num("workers", f.workers, { integer: true, min: 0 });
  if (f.duration !== undefined) s.run.duration = num("duration", f.duration, { min: 1 });
  if (f.keepalive !== undefined) s.session.keepalive = num("keepalive", f.keepalive, { min: 0 });
  if (f.resource !== undefined) s.session.resource = f.resource;
  if (f.loginTimeout !== undefined) s.session.login_timeout = num("login-timeout", f.loginTimeout, { min: 0.1 });
  if (f.redirects !== undefined) s.session.redirects = pick("redirects", f.redirects, REDIRECTS);
  if (f.reconnect !== undefined) {
    s.session.reconnect = true;
    s.session.reconnect_delay = num("reconnect", f.reconnect, { min: 0 });
  }

  const actionFlags = ACTION_FLAGS.some((k) => f[k] !== undefined) || f.roster === false || f.presence === false;
  if (actionFlags && fileHasActions) throw new Error("the scenario file lists actions: leave out the action flags (--sm, --chat-*, --hold, --no-roster, --no-presence)");
  if (actionFlags || !base) s.actions = flagActions(f);
  return finish(s);
}

function flagActions(f: SimFlags): Action[] {
  const actions: Action[] = [];
  if (f.sm || f.smResume) actions.push({ type: "sm", resume: !!f.smResume, request_every: 0 });
  if (f.roster !== false) actions.push({ type: "roster" });
  if (f.presence !== false) actions.push({ type: "presence" });
  const chatting = f.chatRate !== undefined || f.chatTotalRate !== undefined;
  if (!chatting && [f.chatDuration, f.chatCount, f.chatSize, f.chatTo].some((x) => x !== undefined)) {
    throw new Error("--chat-duration, --chat-count, --chat-size and --chat-to need --chat-rate or --chat-total-rate");
  }
  if (chatting) {
    if (f.chatRate !== undefined && f.chatTotalRate !== undefined) throw new Error("give --chat-rate (per user) or --chat-total-rate, not both");
    const duration = f.chatDuration !== undefined ? num("chat-duration", f.chatDuration, { min: 0 }) : 0;
    const count = f.chatCount !== undefined ? num("chat-count", f.chatCount, { integer: true, min: 0 }) : 0;
    // Wait until everyone is online, chat, wait until every message has arrived.
    actions.push({ type: "sync", timeout: 30 });
    actions.push({
      type: "chat",
      to: f.chatTo !== undefined ? pick("chat-to", f.chatTo, ["online", "offline"] as const) : "online",
      rate: f.chatRate !== undefined ? num("chat-rate", f.chatRate, { min: 0.0001 }) : 0,
      total_rate: f.chatTotalRate !== undefined ? num("chat-total-rate", f.chatTotalRate, { min: 0.0001 }) : 0,
      duration: duration || count ? duration : 10,
      count,
      size: f.chatSize !== undefined ? num("chat-size", f.chatSize, { integer: true, min: 40 }) : 100,
    });
    actions.push({ type: "sync", timeout: 30 });
  }
  if (f.hold !== undefined) actions.push({ type: "think", seconds: num("hold", f.hold, { min: 0 }), random: false });
  return actions;
}
