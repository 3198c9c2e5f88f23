// The fault harness (`npm run faults`, `xfarm faults`; docs/failover.md): for
// each fault, a fresh farm of 2 routers (a pair), 2 sms and 2 c2s on loopback
// (sim/local-farm.ts), a counting load of numbered messages between users on
// both front ends (half of them with XEP-0198, sim/fault-client.ts), the
// fault injected a quarter of the way in, then everyone logs in again and
// collects offline messages; the Ledger then says what became of every
// message, and the clients what became of them.
import fs from "node:fs";
import { loadConfig, type Config } from "../lib/config.js";
import { adminRequest } from "../lib/link/admin-link.js";
import type { StatusEntry } from "../lib/link/control.js";
import { openStore } from "../xdb-sql/open-store.js";
import { CountingClient, Ledger, type Drop } from "./fault-client.js";
import { attr, unescapeXml } from "./xml-scan.js";
import { Farm } from "./local-farm.js";
import { MariaDb } from "./mariadb.js";

export const FAULTS = ["none", "kill-sm", "kill-router", "stop-router", "partition-routers", "kill-c2s", "stop-c2s", "restart-sm", "db-stop", "db-pause"] as const;
export type Fault = (typeof FAULTS)[number];
/** Faults that need MariaDB (--store mariadb). */
export const DB_FAULTS: readonly Fault[] = ["db-stop", "db-pause"];

export const FAULT_TEXT: Record<Fault, string> = {
  none: "none (baseline)",
  "kill-sm": "SIGKILL sm-1",
  "kill-router": "SIGKILL the active router",
  "stop-router": "SIGSTOP the active router, then SIGCONT",
  "partition-routers": "the routers' peer link cut, then healed",
  "kill-c2s": "SIGKILL c2s-1",
  "stop-c2s": "SIGSTOP c2s-2, then SIGCONT",
  "restart-sm": "SIGKILL the only sm (sm_count = 1)",
  "db-stop": "MariaDB stopped, then started",
  "db-pause": "MariaDB SIGSTOPped, then SIGCONT",
};

export interface FaultOptions {
  users: number;
  /** Of them, the last this many stay offline until the final round: messages to them are stored offline. */
  offline: number;
  /** Messages a second, all senders together. */
  rate: number;
  faults: Fault[];
  /** Seconds of load per fault; the fault comes a quarter of the way in. */
  duration: number;
  /** Seconds a SIGSTOP or a database outage lasts. */
  pause: number;
  db: "sqlite" | "mariadb";
  /** Test hook: receipts thrown away on purpose, which the counting must report lost. */
  discard: number;
  keep: boolean;
}

export interface FaultRow {
  fault: Fault;
  sent: number;
  received: number;
  bounced: number;
  /** Left in offline storage at the end: a recipient could not log in to collect them (accounted for, not lost). */
  stored: number;
  /** Neither received, bounced nor stored, after everyone collected offline messages. */
  lost: number;
  /** Of those, the sender's XEP-0198 <a h/> had acknowledged. */
  lostAcked: number;
  lostUnacked: number;
  /** Receipts beyond the first. */
  duplicated: number;
  /** Clients the farm disconnected: of the faulted front end, of the others. */
  droppedFaulted: number;
  droppedOthers: number;
  /** Dropped clients that never had a session again before the load ended. */
  notBack: number;
  resumeTried: number;
  resumed: number;
  /** Seconds from the fault until the last message sent went missing, late (> 1 s) or a dropped client was back; null: no fault. */
  recoverS: number | null;
  /** The faulted process (or database) was back, linked, before the load ended. */
  back: boolean | null;
  /** Receipts of ids never sent: must be 0. */
  strays: number;
  /** Logins that failed at the final collection round. */
  finalLoginFailed: number;
  /** Offline messages left in the store after the collection round (stored counts the harness's among them). */
  offlineLeft: number;
}

const DOMAIN = "localhost";
const PASSWORD = "faults-pw";
/** A message that takes longer than this to arrive counts toward the recovery time. */
const LATE_MS = 1_000;
const LOGIN_PARALLEL = 20;
/** How often the routers are asked whether the faulted process is back (each question is an admin link to both). */
const BACK_POLL_MS = 500;
/** Logins tried per client in the final collection round. */
const FINAL_LOGIN_TRIES = 5;

function note(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} faults: ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `test` every `everyMs` until it holds or `ms` passed; resolves with whether it held. */
async function until(test: () => boolean | Promise<boolean>, ms: number, everyMs = 200): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await test()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

/** The member table of whichever router of the pair is active (the passive one's is empty). */
async function members(config: Config, routers: string[]): Promise<StatusEntry[]> {
  return adminRequest(config, { op: "status-request" }, "status", 2_000, routers).then(
    (s) => s.entries,
    () => [],
  );
}

/** The status of the router at `addr`, active or passive; null when it does not answer. */
function statusAt(config: Config, addr: string) {
  return adminRequest(config, { op: "status-request" }, "status", 2_000, [addr]).catch(() => null);
}

/** Which router is active, and its address: the one whose table lists the components. */
async function activeRouter(config: Config, routers: string[]): Promise<{ name: string; addr: string }> {
  for (const addr of routers) {
    const s = await statusAt(config, addr);
    if (s && s.entries.length > 0) return { name: s.router, addr };
  }
  throw new Error("no router answers with a member table");
}

/**
 * One fault against a fresh farm. `previous` is the stopping of the farm
 * before, awaited only before the load starts, so that its shutdown overlaps
 * this one's start-up but never its load; `stopped` is this farm's.
 */
async function runFault(fault: Fault, o: FaultOptions, maria: MariaDb | null, previous: Promise<void>, stopped: (p: Promise<void>) => void, live: Set<Farm>): Promise<FaultRow> {
  const db = maria ? await maria.createDatabase(`faults_${fault.replace("-", "_")}`) : undefined;
  // No offline quota in the way: a bounce must mean the fault, not a full mailbox.
  const sm = { max_offline_messages: 1_000_000 };
  const farm = await Farm.create({ c2sCount: 2, routerCount: 2, smCount: fault === "restart-sm" ? 1 : 2, logLevel: "info", sm, peerProxies: fault === "partition-routers", ...(db ? { db } : {}) });
  live.add(farm);
  const ledger = new Ledger(o.discard);
  const clients: CountingClient[] = [];
  const drops: Drop[] = [];
  let loading = false;
  try {
    await farm.start();
    const config = loadConfig(farm.configFile);
    const routers = [`127.0.0.1:${farm.routerPort}`, `127.0.0.1:${farm.routerPort + 1}`];
    // Every component linked to the active router before the load starts.
    await until(async () => (await members(config, routers)).length === 2 + farm.smCount, 30_000);
    await farm.addUsers("user", o.users, PASSWORD);
    const ports = farm.c2sPorts.map((p) => p.port);
    const target = { ports, domain: DOMAIN, password: PASSWORD };
    for (let k = 0; k < o.users; k++) {
      // Port by k mod 2 and XEP-0198 by k mod 4: each front end holds both kinds.
      clients.push(new CountingClient(k, k + 1, k % 4 < 2, target, ledger, (d) => loading && drops.push(d)));
    }
    const online = clients.slice(0, o.users - o.offline);
    note(`${fault}: farm up in ${farm.dir}; ${online.length} users logging in, ${o.offline} staying offline`);
    for (let i = 0; i < online.length; i += LOGIN_PARALLEL) await Promise.all(online.slice(i, i + LOGIN_PARALLEL).map((c) => c.start()));
    await previous;

    // The load: every 20 ms, the messages due, from online senders taken in turn, each to a random other user (online or not).
    loading = true;
    const loadStart = ledger.now();
    let next = 0;
    let attempts = 0;
    const tick = setInterval(() => {
      const due = Math.floor(((ledger.now() - loadStart) / 1000) * o.rate) - attempts;
      for (let i = 0; i < due; i++) {
        attempts++;
        for (let tries = 0; tries < online.length; tries++) {
          const c = online[next++ % online.length]!;
          let to = 1 + Math.floor(Math.random() * (o.users - 1));
          if (to >= c.user) to++;
          if (c.send(to)) break;
        }
      }
    }, 20);
    const progress = setInterval(() => {
      const { done, sent } = ledger.settled;
      note(`${fault}: ${Math.round((ledger.now() - loadStart) / 1000)} s, ${sent} sent, ${done} arrived or bounced, ${ledger.duplicates} duplicates, ${online.filter((c) => c.state === "active").length}/${online.length} with a session`);
    }, 5_000);

    const injectDelay = (o.duration * 1000) / 4;
    await sleep(injectDelay);
    const injectAt = ledger.now();
    const injectWall = Date.now();
    const faulted = fault === "kill-c2s" ? "c2s-1" : fault === "stop-c2s" ? "c2s-2" : null;
    const backAt = { at: -1 };
    const back = (async () => {
      const linkedAgain = (name: string, since: number) => async () => (await members(config, routers)).some((e) => e.name === name && e.linkedAt >= since);
      const deadline = o.duration * 1000 - injectDelay + 30_000;
      switch (fault) {
        case "none":
          return null;
        case "kill-sm":
        case "restart-sm":
          process.kill(farm.childPid("sm-1"), "SIGKILL");
          return until(linkedAgain("sm-1", injectWall), deadline, BACK_POLL_MS);
        case "kill-c2s":
          process.kill(farm.childPid("c2s-1"), "SIGKILL");
          return until(linkedAgain("c2s-1", injectWall), deadline, BACK_POLL_MS);
        case "kill-router": {
          const { name } = await activeRouter(config, routers);
          const pid = farm.childPid(name);
          process.kill(pid, "SIGKILL");
          // Back: the killed router restarted, and every component linked to the router now active.
          return until(async () => (farm.runningPid(name) ?? pid) !== pid && (await members(config, routers)).filter((e) => e.linkedAt >= injectWall).length === 2 + farm.smCount, deadline, BACK_POLL_MS);
        }
        case "stop-router": {
          const { name, addr } = await activeRouter(config, routers);
          const pid = farm.childPid(name);
          process.kill(pid, "SIGSTOP");
          await sleep(o.pause * 1000);
          process.kill(pid, "SIGCONT");
          // Back: the woken router answers again, and every component is linked to the router active now.
          return until(async () => (await statusAt(config, addr)) !== null && (await members(config, routers)).length === 2 + farm.smCount, deadline, BACK_POLL_MS);
        }
        case "partition-routers": {
          // Both directions stop, nothing closes. Back: never two routers active meanwhile, and one active with every component after it heals.
          for (const p of farm.peerProxies) p.pause();
          let split = false;
          const end = Date.now() + o.pause * 1000;
          while (Date.now() < end) {
            const states = await Promise.all(routers.map((addr) => statusAt(config, addr)));
            if (states.filter((st) => st?.active === true).length > 1) split = true;
            await sleep(BACK_POLL_MS);
          }
          for (const p of farm.peerProxies) p.resume();
          return !split && until(async () => (await members(config, routers)).length === 2 + farm.smCount, deadline, BACK_POLL_MS);
        }
        case "stop-c2s": {
          const pid = farm.childPid("c2s-2");
          process.kill(pid, "SIGSTOP");
          await sleep(o.pause * 1000);
          process.kill(pid, "SIGCONT");
          return until(async () => (await members(config, routers)).some((e) => e.name === "c2s-2"), deadline, BACK_POLL_MS);
        }
        case "db-stop":
          await maria!.pause();
          await sleep(o.pause * 1000);
          await maria!.resume();
          return true;
        case "db-pause":
          process.kill(maria!.pid!, "SIGSTOP");
          await sleep(o.pause * 1000);
          process.kill(maria!.pid!, "SIGCONT");
          return true;
      }
    })().then((ok) => {
      if (ok) backAt.at = ledger.now();
      return ok;
    });
    if (fault !== "none") note(`${fault}: injected ${Math.round((injectAt - loadStart) / 100) / 10} s into the load`);
    await sleep(Math.max(0, o.duration * 1000 - (ledger.now() - loadStart)));
    clearInterval(tick);
    const wasBack = await back;
    note(`${fault}: load over; waiting for what is in flight`);
    // In flight: until every message arrived or bounced, or nothing moved for 2 s.
    let last = -1;
    let still = 0;
    await until(() => {
      const { done, sent } = ledger.settled;
      still = done === last ? still + 1 : 0;
      last = done;
      return done === sent || still >= 10;
    }, 60_000);
    clearInterval(progress);

    note(`${fault}: everyone logs out and in again to collect offline messages`);
    // Drops count from the load's start until here.
    loading = false;
    await Promise.all(clients.map((c) => c.close()));
    // Each logs in again, retrying a few times: a farm still busy after its fault must not turn stored messages into lost ones.
    let finalLoginFailed = 0;
    const relogin = async (c: CountingClient) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await c.start();
        } catch {
          if (attempt === FINAL_LOGIN_TRIES) return void finalLoginFailed++;
          await sleep(1_000);
        }
      }
    };
    for (let i = 0; i < clients.length; i += LOGIN_PARALLEL) await Promise.all(clients.slice(i, i + LOGIN_PARALLEL).map(relogin));
    // Collected: the store holds no offline message for anyone, and nothing arrived for a second.
    const store = await openStore(farm.storeUrl);
    let offlineLeft = 0;
    try {
      let seen = -1;
      const users = Array.from({ length: o.users }, (_, i) => `user${i + 1}@${DOMAIN}`);
      await until(async () => {
        offlineLeft = 0;
        for (const u of users) offlineLeft += await store.countOffline(u);
        const { done } = ledger.settled;
        const quiet = done === seen;
        seen = done;
        return offlineLeft === 0 && quiet;
      }, 60_000, 1_000);
      // What is still stored is accounted for (stored offline), not lost: read which messages they are.
      if (offlineLeft > 0) {
        for (const u of users) for (const m of await store.loadOffline(u)) ledger.stored(unescapeXml(attr(m.xml, "id") ?? ""));
      }
    } finally {
      await store.close();
    }
    await Promise.all(clients.map((c) => c.close()));

    let received = 0, bounced = 0, stored = 0, lostAcked = 0, lostUnacked = 0, duplicated = 0;
    let recover = injectAt;
    for (const s of ledger.sent.values()) {
      if (s.received > 0) received++;
      else if (s.bounced) bounced++;
      else if (s.stored) stored++;
      else if (s.acked) lostAcked++;
      else lostUnacked++;
      duplicated += Math.max(0, s.received - 1);
      // A message to a user offline by design arrives at the end: late, but not because of the fault.
      const late = s.latency > LATE_MS && s.to <= o.users - o.offline;
      if (s.at >= injectAt && (s.received === 0 || late)) recover = Math.max(recover, s.at);
    }
    const faultedPort = faulted ? ports[Number(faulted.slice(-1)) - 1] : undefined;
    const droppedBy = (p: (d: Drop) => boolean) => new Set(drops.filter(p).map((d) => d.k)).size;
    for (const d of drops) if (d.backAt >= 0) recover = Math.max(recover, d.backAt);
    recover = Math.max(recover, backAt.at);
    return {
      fault,
      sent: ledger.sent.size,
      received,
      bounced,
      stored,
      lost: lostAcked + lostUnacked,
      lostAcked,
      lostUnacked,
      duplicated,
      droppedFaulted: droppedBy((d) => d.port === faultedPort),
      droppedOthers: droppedBy((d) => d.port !== faultedPort),
      notBack: drops.filter((d) => d.backAt < 0).length,
      resumeTried: drops.filter((d) => d.resumeTried).length,
      resumed: drops.filter((d) => d.resumed).length,
      recoverS: fault === "none" ? null : Math.round((recover - injectAt) / 100) / 10,
      back: fault === "none" ? null : wasBack === true,
      strays: ledger.strays,
      finalLoginFailed,
      offlineLeft,
    };
  } finally {
    loading = false;
    for (const c of clients) c.destroy();
    stopped(
      farm.stop().then(() => {
        live.delete(farm);
        if (!o.keep) farm.cleanup();
      }),
    );
  }
}

export interface FaultsReport {
  command: string;
  started: string;
  options: FaultOptions;
  rows: FaultRow[];
}

export async function runFaults(o: FaultOptions, command: string): Promise<FaultsReport> {
  const started = new Date().toISOString();
  const maria = o.db === "mariadb" ? await MariaDb.start() : null;
  const rows: FaultRow[] = [];
  let stopping: Promise<void> = Promise.resolve();
  const live = new Set<Farm>();
  // Ctrl-C: stop every farm and the database, remove their directories, and exit.
  const interrupt = () => {
    note("interrupted: stopping the farms");
    void Promise.all([...live].map((f) => f.stop().then(() => !o.keep && f.cleanup())))
      .then(() => maria?.stop())
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupt);
  process.once("SIGTERM", interrupt);
  try {
    for (const fault of o.faults) {
      if (DB_FAULTS.includes(fault) && !maria) throw new Error(`${fault} needs --store mariadb`);
      rows.push(await runFault(fault, o, maria, stopping, (p) => (stopping = p), live));
      note(`${fault}: ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    await stopping;
    await maria?.stop();
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", interrupt);
  }
  return { command, started, options: o, rows };
}

const n = (x: number) => x.toLocaleString("en-US");

/** The report as a Markdown table, one fault a row. */
export function faultsTable(r: FaultsReport): string {
  const head = ["fault", "sent", "received", "bounced", "stored", "lost (acked / unacked)", "duplicated", "dropped: faulted FE / others", "resumed / tried", "recover s", "back"];
  const rows = r.rows.map((x) => [
    FAULT_TEXT[x.fault],
    n(x.sent),
    n(x.received),
    n(x.bounced),
    n(x.stored),
    `${n(x.lost)} (${n(x.lostAcked)} / ${n(x.lostUnacked)})`,
    n(x.duplicated),
    `${x.droppedFaulted} / ${x.droppedOthers}${x.notBack ? ` (${x.notBack} not back)` : ""}`,
    `${x.resumed} / ${x.resumeTried}`,
    x.recoverS === null ? "–" : x.recoverS.toFixed(1),
    x.back === null ? "–" : x.back ? "yes" : "NO",
  ]);
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const o = r.options;
  return [
    `${o.users} users (${o.offline} of them offline until the end; half with XEP-0198), ${n(o.rate)} msgs/s, ${o.duration} s per fault, ${o.db}`,
    "",
    line(head),
    line(head.map(() => "---")),
    ...rows.map(line),
    "",
  ].join("\n");
}

export function writeJson(file: string, r: FaultsReport): void {
  fs.writeFileSync(file, JSON.stringify(r, null, 2) + "\n");
}
