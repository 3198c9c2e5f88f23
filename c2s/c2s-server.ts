// A c2s process: client listeners (STARTTLS and direct TLS), its link to the
// router (what the sms send its sessions: c2s/session-frames.ts), drains,
// fullness and load reports.
import type net from "node:net";
import type { Config } from "../lib/config.js";
import { LOAD_REPORT_MS } from "../lib/link/control.js";
import { LinkClient } from "../lib/link/link-client.js";
import type { Logger } from "../lib/log.js";
import { StartupFailure, failStartup } from "../lib/process-lifecycle.js";
import type { C2sInfo } from "../lib/link/member.js";
import { SessionOp, decodeSessionPayload } from "../lib/link/session-payload.js";
import type { Store } from "../xdb-sql/store.js";
import { Balancer } from "./balancer.js";
import { C2sContext } from "./c2s-context.js";
import { addressKey } from "./client-address.js";
import { ClientListeners } from "./client-listeners.js";
import { ClientConnection } from "./client-connection.js";
import { TlsCredentials } from "../lib/tls-credentials.js";
import { linkMetrics } from "../lib/metrics/link-metrics.js";
import type { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import { c2sMetrics } from "./c2s-metrics.js";
import * as sendingAway from "./sending-away.js";
import { sessionFrames } from "./session-frames.js";
import { ProcessSampler } from "../lib/process-figures.js";

/** A full front end opens its ports again under this share of its capacity (and with its lag back under c2s.max_lag). */
const REOPEN_SHARE = 0.9;
/**
 * How long a draining front end keeps a session for its client to resume
 * before its sm keeps it instead: time to reconnect and resume on a loaded
 * farm. A resume later than that goes through the sm, one round trip more.
 */
const DRAIN_HOLD_MS = 10_000;

export interface C2sServer {
  ports: { port: number; tlsPort: number };
  /** Linked to the router (for /readyz). */
  readonly linked: boolean;
  /** Reads the certificate files again, for new handshakes (SIGHUP). */
  reloadTls(): void;
  close(): Promise<void>;
}

export async function startC2s(config: Config, store: Store, log: Logger, metrics: ProcessMetrics): Promise<C2sServer> {
  const c = config.c2s;
  const secret = config.secrets.get(c.name);
  if (!secret) throw new StartupFailure(`secrets."${c.name}"`, `no link secret for component "${c.name}": set secrets."${c.name}" in the config`);
  const tlsCredentials = await TlsCredentials.load(config, log);
  const capacity = c.capacity || c.max_connections;
  const info: C2sInfo = { host: c.public_host, port: c.port, tlsPort: c.tls_port, weight: c.weight, capacity, started: Date.now(), flatAcks: true };
  const link = new LinkClient({
    name: c.name,
    role: "c2s",
    secret,
    routers: config.router.addresses,
    // No sm known yet: the ports stay closed and peers send no one here until one is (docs/redirection.md).
    info: { ...info, noSm: true },
    log,
    maxFrame: config.link.max_frame,
    highWater: config.link.high_water,
  });
  const balancer = new Balancer({
    name: c.name,
    weight: c.weight,
    capacity,
    margin: c.redirect_margin,
    floor: c.redirect_floor,
    memorySeconds: c.redirect_memory,
    maxLag: c.max_lag,
  });
  const ctx = new C2sContext({ ...c, domains: config.domains, xml: config.xml }, store, link, tlsCredentials, balancer, log);
  c2sMetrics(metrics, ctx);
  linkMetrics(metrics, link);
  link.on("loads", (loads) => {
    const reporting = balancer.onLoads(loads);
    if (reporting) log.info({ reporting }, "front ends reporting load");
  });
  // Declared here, opened below once the link handlers are set: drain and full state close and open it.
  let listeners: ClientListeners | null = null;
  /** The drain the router ordered (protocol §1.7), and whether this front end is full (its own marks). */
  let drain: { rate: number; timer: NodeJS.Timeout; started: number; moved: number } | null = null;
  let full = false;
  /**
   * Whether the member table names an sm: until then a login could only fail
   * ("no session manager"), so the ports stay closed and a client's next
   * address, or its retry, is tried at once. Kept while the link is down (a
   * router failover): the sms are most likely still there.
   */
  let smKnown = false;
  /** Whether the client ports should be open: an sm is known, and no drain or fullness closed them. */
  const takingClients = () => smKnown && !drain && !full;
  /** Opens or closes the client ports to match the state, then announces it (open first: a peer may send clients at once). */
  const stateChanged = () => {
    listeners?.setAccepting(takingClients());
    link.setInfo({ ...info, ...(!smKnown && { noSm: true }), ...(drain && { draining: true, drainRate: drain.rate }), ...(full && { full: true }) });
  };
  const startDrain = (rate: number) => {
    if (drain) {
      drain.rate = rate;
      return stateChanged();
    }
    // Each second, move up to `rate` bound clients to the least loaded front ends: every one, those that came
    // back after a redirect too, since the closed ports now send a client's next attempt elsewhere.
    const timer = setInterval(() => {
      // A session waiting here for its client to resume it (sent away, or dropped) waits at its sm
      // after a while instead (protocol §2.6): the drain ends even if the client never comes back.
      for (const conn of ctx.hibernatedBefore(Date.now() - DRAIN_HOLD_MS)) sendingAway.leaveForResumption(conn);
      let budget = drain!.rate;
      for (const conn of ctx.all()) {
        if (budget <= 0) break;
        if (!conn.isBound) continue;
        const target = balancer.moveTarget(conn.direct);
        if (!target) break;
        sendingAway.moveTo(conn, target);
        drain!.moved++;
        budget--;
      }
    }, 1_000);
    timer.unref();
    drain = { rate, timer, started: Date.now(), moved: 0 };
    balancer.draining = true;
    stateChanged();
    log.info({ rate }, "draining: client ports closed, new clients redirected, connected ones moved off");
  };
  const stopDrain = () => {
    if (!drain) return;
    clearInterval(drain.timer);
    drain = null;
    balancer.draining = false;
    stateChanged();
    log.info({ full }, "undrained: taking clients again");
  };
  /**
   * Full: at capacity or over c2s.max_lag for two report periods running, the
   * ports close while some peer takes clients (never the last front end open),
   * and open again under the lower marks: REOPEN_SHARE of capacity and a
   * report period's lag within c2s.max_lag, or when no peer takes clients any
   * more. One slow period is not enough: on a busy box a single garbage
   * collection or burst of handshakes would close the ports under clients a
   * drain is sending here.
   */
  let lagOver = false;
  const checkFull = (lagMs: number) => {
    const lagged = lagOver && lagMs > c.max_lag;
    lagOver = lagMs > c.max_lag;
    const next = full
      ? !(ctx.sessions < capacity * REOPEN_SHARE && lagMs <= c.max_lag) && balancer.peerCanTake()
      : (ctx.sessions >= capacity || lagged) && balancer.peerCanTake();
    if (next === full) return;
    full = next;
    log.warn({ sessions: ctx.sessions, capacity, lag: lagMs, maxLag: c.max_lag }, full ? "full: client ports closed" : "no longer full");
    stateChanged();
  };
  link.on("control", (msg) => {
    if (msg.op === "expect") {
      balancer.expect(msg.ip, msg.user, msg.from);
      if (typeof msg.plain === "string") ctx.plain.accept(msg.user, Buffer.from(msg.plain, "base64"));
    } else if (msg.op === "drain") startDrain(msg.rate);
    else if (msg.op === "undrain") stopDrain();
  });
  const sampler = new ProcessSampler(info.started);
  const reporter = setInterval(() => {
    const figures = sampler.sample();
    link.sendControl({
      op: "load",
      sessions: ctx.sessions,
      connections: ctx.size,
      throttled: ctx.rates.pausedCount,
      delayedLogins: ctx.throttle.delayed,
      expecting: balancer.expecting,
      heard: balancer.heard(),
      peers: balancer.peersReporting(),
      ...figures,
      logins: ctx.counters.loginTotal,
      messages: ctx.counters.stanzasIn.message,
      ...(drain && { drainStarted: drain.started, drainMoved: drain.moved }),
    });
    checkFull(figures.lag);
  }, LOAD_REPORT_MS);
  reporter.unref();

  /** The incarnation of each linked sm, "name/started", so that a restarted sm is told apart. */
  let smIncarnations = new Map<string, string>();
  const incarnation = (name: string) => smIncarnations.get(name) ?? null;
  link.on("route", sessionFrames(ctx, log, incarnation));
  // Back after a silence long enough that the sms may have ended this front end's sessions
  // (sm.c2s_grace): each is rebuilt, its presence broadcast again (protocol §2.5).
  link.on("silenced", () => {
    let revived = 0;
    for (const conn of ctx.all()) {
      if (!conn.hasSession) continue;
      conn.revive();
      revived++;
    }
    if (revived > 0) log.info({ revived }, "sessions rebuilt after the link was cut for silence");
  });
  link.on("undeliverable", (to, key, payload) => {
    let msg;
    try {
      msg = decodeSessionPayload(payload);
    } catch {
      msg = undefined;
    }
    if (msg?.op === SessionOp.Takeover) {
      // A front end asked is gone: one "no" (its sm is asked once every one has said it).
      ctx.get(msg.meta.newSid)?.handoffRefused(to);
      return;
    }
    // No sm is linked: a session's stanzas wait until one is (protocol §2.5), and the sessions are
    // rebuilt on it; only a login that has no session yet cannot wait.
    if (msg?.op !== SessionOp.Start) {
      if (msg?.op === SessionOp.Forward) ctx.routeLater(key, msg.xml, msg.meta.origin);
      return;
    }
    log.warn({ to, key }, "no session manager reachable for a login; closing its stream");
    ctx.get(msg.meta.sid)?.closedBySm("internal-server-error", "no session manager is available; reconnect later");
  });
  link.on("members", (members) => {
    balancer.onMembers(members);
    const hasSm = members.some((m) => m.role === "sm");
    if (hasSm !== smKnown) {
      smKnown = hasSm;
      log.info({ sms: members.filter((m) => m.role === "sm").length }, hasSm ? "a session manager is linked: taking clients" : "no session manager is linked: client ports closed until one is");
      stateChanged();
    }
    // The peers that were to take clients closed their ports too: this one opens again.
    if (full && !balancer.peerCanTake()) {
      full = false;
      log.warn("no longer full: no other front end takes clients");
      stateChanged();
    }
    smIncarnations = new Map(members.filter((m) => m.role === "sm").map((m) => [m.name, `${m.name}/${m.info.started}`]));
    // Sessions whose sm is gone, restarted, or no longer owns the user move to the owner now (protocol §2.2).
    let moved = 0;
    for (const conn of ctx.all()) {
      const user = conn.bareJid;
      if (!user || !conn.hasSession) continue;
      const owner = link.smOwnerOf(user);
      if (owner === undefined || incarnation(owner) === conn.holder) continue;
      conn.holder = incarnation(owner);
      conn.rebuild();
      moved++;
    }
    if (moved > 0) log.info({ moved }, "sessions rebuilt on their current session managers");
    ctx.routeHeld();
  });
  // A secret the router refuses at the first link-up is this process's config: restarts would loop on it.
  link.once("secretRefused", (reason) => failStartup(log, `secrets."${c.name}"`, `${reason}: set secrets."${c.name}" to the router's`));
  link.start();

  // Both ports take plain sockets: a direct-TLS client is a connection from
  // accept on, counted and under the sweep's deadlines during its handshake.
  const accept = (socket: net.Socket, direct: boolean) => {
    const ip = socket.remoteAddress;
    if (ip === undefined) return void socket.destroy(); // gone before it was accepted
    const refusal = ctx.gate.enter(addressKey(ip), ctx.sockets);
    if (refusal) return ctx.refuse(socket, direct, refusal);
    ctx.counters.accepted++;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    new ClientConnection(ctx, socket, direct);
  };
  listeners = new ClientListeners({ port: c.port, tlsPort: c.tls_port }, c.host === "*" ? undefined : c.host, accept, log);
  // The ports are taken now (a port in use fails the start) and opened to clients once an sm is known.
  listeners.setAccepting(takingClients());
  const ports = await listeners.start();
  log.info({ ...ports, host: c.host }, "c2s listening for clients");

  return {
    ports,
    get linked() {
      return link.connected;
    },
    reloadTls: () => void tlsCredentials.reload(),
    async close() {
      clearInterval(reporter);
      if (drain) clearInterval(drain.timer);
      sampler.stop();
      const closed = listeners!.close();
      await ctx.shutdown();
      link.stop();
      await closed;
    },
  };
}
