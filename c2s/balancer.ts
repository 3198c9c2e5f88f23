// Where a new client should go: this front end, or a less loaded one
// (docs/redirection.md). A redirect costs the client a reconnect (and most
// clients do not follow it), so balance alone redirects only on a real
// imbalance: over an absolute floor and a relative margin, with hysteresis.
// Every front end sees the router's load table; on top of it, each counts the
// clients it sent elsewhere lately, so a burst of logins aimed at one box
// spreads at once instead of all following the same stale figure to the same peer.
import type { C2sLoad } from "../lib/link/control.js";
import type { C2sInfo, Member } from "../lib/link/member.js";

export interface BalancerConfig {
  name: string;
  weight: number;
  /** Sessions at which this front end sends every new client elsewhere. */
  capacity: number;
  /** How far over its fair share (0.1 = 10 %) a front end may go before it redirects. */
  margin: number;
  /** Sessions over its fair share a front end may always hold before it redirects for balance. */
  floor: number;
  /** Seconds a redirected client is remembered, to be served if it comes back here. */
  memorySeconds: number;
  /** Event-loop delay (ms) over which a front end counts as full: it sends new clients on and takes none. */
  maxLag: number;
}

/** Where a client is sent: the front end, and the address it is told. */
export interface Redirect {
  name: string;
  address: string;
}

/** How long a front end waits for a client a peer sent it. */
const EXPECT_MS = 30_000;
/**
 * How long a client sent to a peer counts on top of that peer's reported
 * load. A peer's report counts, among the clients it expects, every one
 * whose `expect` notice it had got, and says how many notices it got from
 * each front end (`heard`): that many of the oldest sent clients then stop
 * counting here, whenever they log in over there. Counting a client twice
 * would end a run of redirects early, which at the end of a burst leaves
 * this front end above its share for good; dropping it before the peer's
 * report shows it would push clients past the mark, towards ping-pong.
 * A notice lost with a router leaves its client counting for
 * SENT_MEMORY_MS. A peer of an earlier version reports no `heard`: there a
 * report that changed is taken to show the clients sent SENT_FRESH_MS
 * before it (a peer reports every 2 s, and the router shares the table
 * within 1 s), and a client logged in later than that is missed.
 */
const SENT_FRESH_MS = 1_500;
const SENT_MEMORY_MS = 3_500;

function take(map: Map<string, number>, key: string, now: number): boolean {
  const until = map.get(key);
  if (until === undefined) return false;
  map.delete(key);
  return until > now;
}

/** Drops the times up to `until` from the front of an ascending list. */
function forget(times: number[], until: number): void {
  let i = 0;
  while (i < times.length && times[i]! <= until) i++;
  times.splice(0, i);
}

interface Peer {
  name: string;
  info: C2sInfo;
  load: C2sLoad | null;
  /** When this front end sent each of its latest clients there, oldest first. */
  sent: number[];
  /** The peer's count of this front end's `expect` notices in its last report; null before one with it. */
  heardSeen: number | null;
}

export class Balancer {
  private peers = new Map<string, Peer>();
  /** `${ip} ${user}` → when the memory of its redirect expires. */
  private readonly redirected = new Map<string, number>();
  /** Clients a peer sent here, served without a second redirect (no ping-pong on stale loads). */
  private readonly expected = new Map<string, number>();
  /** `expect` notices got since the start, by sending front end: reported, for each sender to know what the report counts. */
  private readonly heardFrom = new Map<string, number>();
  draining = false;
  /** Redirecting for balance: on over the threshold, off again only at half of it (hysteresis). */
  private rebalancing = false;
  /** This front end's own event-loop delay, as the router's table last showed it. */
  private lag = 0;

  constructor(private readonly cfg: BalancerConfig) {}

  onMembers(members: Member[]): void {
    const next = new Map<string, Peer>();
    for (const m of members) {
      if (m.role !== "c2s" || m.name === this.cfg.name) continue;
      const old = this.peers.get(m.name);
      next.set(m.name, { name: m.name, info: m.info as unknown as C2sInfo, load: old?.load ?? null, sent: old?.sent ?? [], heardSeen: old?.heardSeen ?? null });
    }
    this.peers = next;
  }

  /** The other front ends linked to the router. */
  peerNames(): string[] {
    return [...this.peers.keys()];
  }

  /** Takes the router's load table; returns the peers now reporting if that set grew. */
  onLoads(loads: Record<string, C2sLoad>, now = Date.now()): string[] | null {
    this.lag = loads[this.cfg.name]?.lag ?? this.lag;
    let grew = false;
    for (const [name, load] of Object.entries(loads)) {
      const p = this.peers.get(name);
      if (p) {
        grew ||= p.load === null;
        const heard = load.heard && (load.heard[this.cfg.name] ?? 0);
        if (heard === undefined) {
          if (load.sessions !== p.load?.sessions) forget(p.sent, now - SENT_FRESH_MS);
        } else {
          // A count lower than the last one is a restarted peer's: it counts none of the clients sent so far.
          if (p.heardSeen !== null && heard > p.heardSeen) p.sent.splice(0, heard - p.heardSeen);
          p.heardSeen = heard;
        }
        p.load = load;
      }
    }
    return grew ? this.reporting().map((p) => p.name) : null;
  }

  /** How many peers' load this front end has heard. */
  peersReporting(): number {
    return this.reporting().length;
  }

  private reporting() {
    return [...this.peers.values()].filter((p) => p.load);
  }

  /**
   * The address ("host:port") to send this authenticated client to, or null
   * to serve it here. `sessions` is this front end's live count. The caller
   * first checks returned(): a client that came back is always served.
   */
  redirectFor(ip: string, user: string, sessions: number, directTls: boolean, now = Date.now()): Redirect | null {
    const target = this.leastLoaded(now);
    if (!target) return null;
    const full = this.draining || sessions >= this.cfg.capacity || this.lag > this.cfg.maxLag;
    if (!full && !this.overShare(sessions, target)) return null;
    target.sent.push(now);
    this.remember(ip, user, now);
    return { name: target.name, address: hostPort(target.info.host, directTls ? target.info.tlsPort : target.info.port) };
  }

  /**
   * Whether this front end holds so many more sessions than `target` that a
   * client is worth a reconnect (docs/redirection.md). `excess` is what it holds
   * beyond its weight's share at the target's level, in its own sessions.
   */
  private overShare(sessions: number, target: Peer): boolean {
    const targetShare = this.estimate(target) / target.info.weight;
    const excess = sessions - this.cfg.weight * targetShare;
    const threshold = Math.max(this.cfg.floor, this.cfg.margin * this.cfg.weight * targetShare);
    this.rebalancing = excess > (this.rebalancing ? threshold / 2 : threshold);
    // Never past this front end's own share: a move that would put the target over is the start of ping-pong.
    if (!this.rebalancing || (this.estimate(target) + 1) / target.info.weight > sessions / this.cfg.weight) return false;
    // Clients flow down from the most loaded front ends only. One further down may be where the top one just sent
    // this client, its `expect` still on the way: moving it again would cost the client a second reconnect.
    return !this.peerAbove(sessions / this.cfg.weight + threshold / 2 / this.cfg.weight);
  }

  /** Whether a peer that takes part in balancing holds more than `share` sessions per unit of weight. */
  private peerAbove(share: number): boolean {
    for (const p of this.peers.values()) {
      if (p.load && !p.info.draining && p.load.sessions / p.info.weight > share) return true;
    }
    return false;
  }

  /** True once for a client redirected recently that came back: one that does not follow redirects. */
  returned(ip: string, user: string, now = Date.now()): boolean {
    return take(this.redirected, `${ip} ${user}`, now);
  }

  /** A peer (`from`, when it says) redirected this client here. */
  expect(ip: string, user: string, from?: string, now = Date.now()): void {
    this.expected.set(`${ip} ${user}`, now + EXPECT_MS);
    if (from !== undefined) this.heardFrom.set(from, (this.heardFrom.get(from) ?? 0) + 1);
  }

  /** Clients peers sent here that have not logged in yet: reported, since a peer's estimate of this front end counts them. */
  get expecting(): number {
    return this.expected.size;
  }

  /** `expect` notices got since the start, by sender (protocol §1.6 `heard`). */
  heard(): Record<string, number> {
    return Object.fromEntries(this.heardFrom);
  }

  /** True once for a client a peer sent here: it is served, never bounced on. */
  wasSent(ip: string, user: string, now = Date.now()): boolean {
    return take(this.expected, `${ip} ${user}`, now);
  }

  /** Whether some peer takes clients now: a full front end closes its ports only then (never the last one open). */
  peerCanTake(now = Date.now()): boolean {
    return this.leastLoaded(now) !== null;
  }

  /** Where to move a connected client while draining; null when no peer can take one. */
  moveTarget(directTls: boolean, now = Date.now()): Redirect | null {
    const target = this.leastLoaded(now);
    if (!target) return null;
    target.sent.push(now);
    return { name: target.name, address: hostPort(target.info.host, directTls ? target.info.tlsPort : target.info.port) };
  }

  /** Remembers a client sent away, so that it is served if it comes back. */
  remember(ip: string, user: string, now = Date.now()): void {
    this.redirected.set(`${ip} ${user}`, now + this.cfg.memorySeconds * 1000);
  }

  /** Forgets redirects older than the memory; called by the c2s's sweep. */
  sweep(now = Date.now()): void {
    for (const [k, until] of this.redirected) if (until <= now) this.redirected.delete(k);
    for (const [k, until] of this.expected) if (until <= now) this.expected.delete(k);
  }

  private estimate(p: Peer): number {
    return (p.load?.sessions ?? 0) + (p.load?.expecting ?? 0) + p.sent.length;
  }

  private leastLoaded(now: number): Peer | null {
    let best: Peer | null = null;
    let bestLoad = Infinity;
    for (const p of this.peers.values()) {
      forget(p.sent, now - SENT_MEMORY_MS);
      if (p.info.draining || p.info.full || p.info.noSm || !p.load) continue; // not yet reporting, leaving, or its ports closed
      if (p.load.lag > this.cfg.maxLag || this.estimate(p) >= p.info.capacity) continue;
      const rel = this.estimate(p) / p.info.weight;
      if (rel < bestLoad) {
        best = p;
        bestLoad = rel;
      }
    }
    return best;
  }
}

/** host:port, with an IPv6 literal in brackets (RFC 6120 §4.9.3.19). */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
