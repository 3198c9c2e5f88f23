// `npm run soak`: a real farm (2 c2s, 1 sm, a router with XEP-0114
// components) with the shipped limits, a few hundred honest users chatting
// through the bundled simulator, and beside them, for the whole run, every
// attack issue 13 found (sim/soak-attacks.ts), one launched every fraction
// of a second from other loopback addresses. It samples each farm process's
// memory and CPU, then checks that every honest user logged in, every honest
// message arrived, no process restarted, and memory came back near its
// start. Prints a table, writes everything to a JSON file, and exits 1 if
// the run was not clean. docs/security.md ("How it is tested") explains it.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { Command } from "commander";
import { configDefaults } from "../lib/config.js";
import { openStore } from "../xdb-sql/open-store.js";
import { cpuSeconds, rssKb } from "./process-tree.js";
import { Farm } from "./local-farm.js";
import { expandSources } from "./loopback.js";
import { runSim } from "./runner.js";
import type { SimResults, SyncOutcome } from "./results.js";
import { defaultScenario, finish, type Scenario } from "./scenario.js";
import { ANSWER_MS, ATTACKS, type AddressGroup, type SoakTargets } from "./soak-attacks.js";
import { logIn, type SoakConn } from "./soak-conn.js";
import { byKind, processFigures, SOAK_FORMAT, soakTable, verdictReasons, type Phase, type ProcSample, type SeriesRow, type SoakReport } from "./soak-report.js";
import { AttackSchedule } from "./soak-schedule.js";

export interface SoakOptions {
  minutes: number;
  users: number;
  /** Messages a second each honest user sends. */
  chatRate: number;
  /** Seconds between two attacks' launches. */
  attackEvery: number;
  maxAttacks: number;
  /** Honest accounts the guessers try (their owners log in again and again). */
  guessed: number;
  reloginEvery: number;
  sampleEvery: number;
  settle: number;
  /** End the settling as soon as every process's memory is back near its start. */
  untilNear: boolean;
  out: string;
  keep: boolean;
}

const DOMAIN = "localhost";
const HONEST_PASSWORD = "honest-pw";
const OWNER_PASSWORD = "owner-pw";
const ATTACKER_PASSWORD = "mallory-pw";
/** Honest simulated users: a hundred addresses, a few users each, well within c2s.max_unauthenticated_per_address. */
const HONEST_SOURCES = "127.0.1.1-127.0.1.100";
/** The owners of guessed accounts, each from an address of its own. */
const ownerAddress = (k: number) => `127.0.2.${k + 1}`;
/** Attackers: 127.0.0.2–127.0.0.30, a group per kind of attack, none shared with honest clients. */
const ATTACK_SOURCES: Record<AddressGroup, string> = {
  login: "127.0.0.2-127.0.0.13",
  junk: "127.0.0.14-127.0.0.23",
  crowd: "127.0.0.24-127.0.0.26",
  guess: "127.0.0.27-127.0.0.30",
};
const LOGIN_RATE = 25;
/** How long the honest run may take to see everyone in, and every message arrive at the end. */
const SYNC_TIMEOUT_S = 120;
const PROCESSES = ["supervisor", "router-1", "sm-1", "c2s-1", "c2s-2"];
const GALLERY_NODE = "urn:example:gallery";

/** Waits `ms`, or less if `signal` aborts first. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });

function note(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} soak: ${line}\n`);
}

/** What the attacks need in the store: an open PEP node of 6 × 200 KB, a roster of 12,000 contacts. */
async function plantData(farm: Farm): Promise<void> {
  const store = await openStore(farm.storeUrl);
  try {
    await store.putPepNode(`gallery1@${DOMAIN}`, { node: GALLERY_NODE, config: { "pubsub#access_model": "open", "pubsub#max_items": "10" } });
    for (let i = 1; i <= 6; i++) {
      const item = { id: `i${i}`, xml: `<picture xmlns='urn:example:picture'>${String(i).repeat(200_000)}</picture>`, published: new Date() };
      await store.publishPepItem(`gallery1@${DOMAIN}`, GALLERY_NODE, item, 10);
    }
    for (let i = 0; i < 12_000; i++) {
      // SQLite's calls block: let the soak's own clients have their turn now and then.
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      await store.putRosterItem(`popular1@${DOMAIN}`, {
        contact: `contact-${i}@example.net`,
        name: `Contact number ${i} of many`,
        subscription: "both",
        askOut: false,
        pendingIn: false,
        visible: true,
        groups: ["Everyone"],
      });
    }
  } finally {
    await store.close();
  }
}

/** The honest run: log in (XEP-0198, roster, presence), all together, chat for `seconds`, wait for every message, close. */
function honestScenario(farm: Farm, o: SoakOptions, seconds: number): Scenario {
  const sc = defaultScenario();
  const fill = Math.ceil(o.users / LOGIN_RATE);
  sc.server = { ...sc.server, host: "127.0.0.1", ports: farm.c2sPorts.map((p) => p.port), domain: DOMAIN, security: "starttls", mechanism: "SCRAM-SHA-1", sources: [HONEST_SOURCES] };
  sc.users = { ...sc.users, count: o.users, first: 1, name: "user%d", password: HONEST_PASSWORD };
  sc.arrival = [{ rate: LOGIN_RATE, duration: fill }];
  sc.session = { ...sc.session, keepalive: 60, login_timeout: 60, reply_timeout: 60 };
  sc.actions = [
    { type: "sm", resume: false, request_every: 10 },
    { type: "roster" },
    { type: "presence" },
    { type: "sync", timeout: SYNC_TIMEOUT_S },
    { type: "chat", to: "online", rate: o.chatRate, total_rate: 0, duration: seconds, count: 0, size: 200 },
    { type: "sync", timeout: SYNC_TIMEOUT_S },
    { type: "close" },
  ];
  sc.run = { ...sc.run, duration: fill + SYNC_TIMEOUT_S + seconds + SYNC_TIMEOUT_S + 120, workers: 1, interarrival: "uniform" };
  return finish(sc);
}

/**
 * The owners of the guessed accounts log in (SCRAM over STARTTLS) from their
 * own addresses, all of them every `every` seconds until stopped: the login
 * throttle must never keep them out.
 */
class OwnerLogins {
  ok = 0;
  failed = 0;
  slowest = 0;
  /** Logins sent to the other front end: there the address is new to the throttle, which may hold it. */
  redirected = 0;
  readonly failures: string[] = [];
  private readonly stopping = new AbortController();
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly farm: Farm,
    private readonly count: number,
    private readonly answerMs: number,
  ) {}

  /** One round: every owner once, at the same time. */
  async round(): Promise<void> {
    await Promise.all(Array.from({ length: this.count }, (_, k) => this.login(k)));
  }

  start(every: number): void {
    this.loop = (async () => {
      while (!this.stopping.signal.aborted) {
        await this.round();
        await sleep(every * 1000, this.stopping.signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private async login(k: number): Promise<void> {
    const conns: SoakConn[] = [];
    const t0 = performance.now();
    try {
      const { conn, redirects } = await logIn({
        port: this.farm.c2sPorts[k % this.farm.c2sPorts.length]!.port,
        localAddress: ownerAddress(k),
        user: `owner${k + 1}`,
        password: OWNER_PASSWORD,
        mechanism: "SCRAM-SHA-1",
        answerMs: this.answerMs,
        track: (c) => conns.push(c),
      });
      conn.send("</stream:stream>");
      this.ok++;
      if (redirects) this.redirected++;
      this.slowest = Math.max(this.slowest, (performance.now() - t0) / 1000);
    } catch (err) {
      this.failed++;
      if (this.failures.length < 20) this.failures.push(`owner${k + 1} from ${ownerAddress(k)}: ${(err as Error).message}`);
    } finally {
      for (const c of conns) c.destroy();
    }
  }
}

async function runSoak(o: SoakOptions, command: string): Promise<SoakReport> {
  const started = new Date();
  const defaults = configDefaults();
  const components = ["bot1", "bot2"].map((b) => ({ domain: `${b}.${DOMAIN}`, secret: randomBytes(12).toString("hex") }));
  const farm = await Farm.create({
    c2sCount: 2,
    smCount: 1,
    logLevel: "info",
    components: Object.fromEntries(components.map((c) => [c.domain, c.secret])),
    // A local farm loosens these two for tests from one address; the soak runs with the shipped values.
    c2s: { auth_timeout: defaults.c2s.auth_timeout, max_unauthenticated_per_address: defaults.c2s.max_unauthenticated_per_address },
  });
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort();
  process.once("SIGINT", onSigint);
  const t0 = Date.now();
  const series: SeriesRow[] = [];
  const phases: Partial<Record<Phase, number>> = {};
  let phase: Phase = "setup";
  let phaseAt = t0;
  const endPhase = () => (phases[phase] = Math.round(Date.now() - phaseAt) / 1000);
  const enter = (next: Phase) => {
    endPhase();
    phase = next;
    phaseAt = Date.now();
  };
  const sample = (): SeriesRow => {
    const procs: Record<string, ProcSample> = {};
    for (const name of PROCESSES) {
      const pid = name === "supervisor" ? farm.pid! : farm.childPid(name);
      procs[name] = { pid, rssKb: rssKb(pid), cpuS: cpuSeconds(pid) };
    }
    const row = { t: Math.round(Date.now() - t0) / 1000, phase, procs };
    series.push(row);
    return row;
  };
  let sampler: NodeJS.Timeout | null = null;
  try {
    await farm.start();
    note(`farm up in ${farm.dir}; making accounts and data`);
    await farm.addUsers("user", o.users, HONEST_PASSWORD);
    await farm.addUsers("owner", o.guessed, OWNER_PASSWORD);
    for (const prefix of ["mallory", "victim", "gallery", "popular"]) await farm.addUsers(prefix, prefix === "mallory" ? 8 : prefix === "victim" ? 2 : 1, ATTACKER_PASSWORD);
    sampler = setInterval(sample, o.sampleEvery * 1000);
    sample();

    const l = defaults.c2s;
    const targets: SoakTargets = {
      c2s: farm.c2sPorts,
      componentPort: farm.componentPort,
      components,
      domain: DOMAIN,
      attackers: Array.from({ length: 8 }, (_, i) => `mallory${i + 1}`),
      attackerPassword: ATTACKER_PASSWORD,
      victims: ["victim1", "victim2"],
      guessed: Array.from({ length: o.guessed }, (_, i) => `owner${i + 1}`),
      gallery: { user: "gallery1", node: GALLERY_NODE },
      popular: "popular1",
      limits: {
        authTimeout: l.auth_timeout,
        authMaxDelay: l.auth_max_delay,
        authDelay: l.auth_delay,
        tlsHandshakeTimeout: l.tls_handshake_timeout,
        maxUnauthenticatedPerAddress: l.max_unauthenticated_per_address,
        rateBurst: l.rate_burst,
        rateCutoff: l.rate_cutoff,
      },
    };
    // A held login waits at most c2s.auth_max_delay before it is answered.
    const owners = new OwnerLogins(farm, o.guessed, (l.auth_max_delay + 5) * 1000 + ANSWER_MS);
    // Their first logins make their addresses known to the throttle, as a user's home is.
    await owners.round();
    // Seconds of writes, one commit each: made while the honest users log in, needed only by the attacks.
    const plantStart = Date.now();
    const planted = plantData(farm).then(() => note(`PEP items and the large roster planted in ${((Date.now() - plantStart) / 1000).toFixed(1)} s`));
    planted.catch(() => {});

    const attackSeconds = Math.round(o.minutes * 60);
    enter("login");
    note(`${o.users} honest users logging in`);
    let everyoneIn: (s: SyncOutcome) => void = () => {};
    const allIn = new Promise<SyncOutcome>((resolve) => (everyoneIn = resolve));
    const honest = runSim(honestScenario(farm, o, attackSeconds), { progress: "none", onSync: (s) => s.point === 0 && everyoneIn(s) });
    const first = await Promise.race([allIn, honest.then(() => null)]);
    let results: SimResults;
    const schedule = new AttackSchedule(
      ATTACKS,
      targets,
      Object.fromEntries(Object.entries(ATTACK_SOURCES).map(([g, spec]) => [g, expandSources([spec])])) as Record<AddressGroup, string[]>,
      { everyMs: o.attackEvery * 1000, maxInFlight: o.maxAttacks },
    );
    if (first) {
      await planted;
      enter("attack");
      sample();
      note(`everyone in${first.complete ? "" : " (the sync timed out)"}; attacks for ${o.minutes} min`);
      schedule.start();
      owners.start(o.reloginEvery);
      const progress = setInterval(() => {
        const last = series.at(-1)!;
        const rss = PROCESSES.slice(1).map((n) => `${n} ${(last.procs[n]!.rssKb / 1024).toFixed(0)}`).join(", ");
        note(`${Math.round((Date.now() - phaseAt) / 1000)} s: ${schedule.records.length} attacks made, ${schedule.inFlight} running; RSS MB ${rss}`);
      }, 30_000);
      await sleep(attackSeconds * 1000, interrupted.signal);
      clearInterval(progress);
      enter("drain");
      note("attacks stopped; the honest run finishes");
      await schedule.stop();
      await owners.stop();
      results = await honest;
    } else {
      results = await honest;
      await planted;
      enter("drain");
    }
    enter("settle");
    const startAt = series.find((r) => r.phase === "attack")?.t ?? 0;
    const allNear = () => PROCESSES.every((n) => processFigures(n, series, startAt, 0).near);
    note(`the farm is left alone for ${o.settle} s${o.untilNear ? " at most, until every process's memory is back near its start" : ""}`);
    const settleEnd = Date.now() + o.settle * 1000;
    while (Date.now() < settleEnd && !interrupted.signal.aborted && !(o.untilNear && allNear())) {
      await sleep(Math.min(o.sampleEvery * 1000, settleEnd - Date.now()), interrupted.signal);
    }
    clearInterval(sampler);
    sampler = null;
    sample();
    endPhase();

    const restarts = (name: string) => Math.max(0, farm.lines.filter((x) => x.proc === "supervisor" && x.msg === "started" && x.child === name).length - 1);
    const t = results.totals;
    const report: Omit<SoakReport, "verdict"> = {
      format: SOAK_FORMAT,
      started: started.toISOString(),
      finished: new Date().toISOString(),
      command,
      options: { ...o },
      farm: { c2s: 2, sm: 1, dir: farm.dir },
      phases,
      processes: PROCESSES.map((n) => processFigures(n, series, startAt, n === "supervisor" ? 0 : restarts(n))),
      honest: {
        users: o.users,
        logged_in: t.logged_in,
        login_failed: t.login_failed,
        dropped: t.dropped,
        errors: t.errors,
        errors_by_kind: t.errors_by_kind,
        msgs_sent: t.msgs_sent,
        msgs_received: t.msgs_received,
        msgs_missing: t.msgs_missing,
        sync_complete: results.syncs.at(-1)?.complete ?? false,
        relogins: { accounts: o.guessed, ok: owners.ok, failed: owners.failed, redirected: owners.redirected, slowest_s: Math.round(owners.slowest * 10) / 10, failures: owners.failures },
      },
      attacks: { made: schedule.records.length, by_kind: byKind(ATTACKS, schedule.records), list: schedule.records },
      series,
      sim: { totals: results.totals, latency_ms: results.latency_ms, syncs: results.syncs, ended_by: results.ended_by },
    };
    const reasons = verdictReasons(report);
    return { ...report, verdict: { clean: reasons.length === 0, reasons } };
  } finally {
    if (sampler) clearInterval(sampler);
    process.off("SIGINT", onSigint);
    await farm.stop();
    if (!o.keep) farm.cleanup();
  }
}

const num = (what: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number, at least ${min} (not "${v}")`);
  return n;
};

const program = new Command("soak")
  .description("hostile and honest traffic mixed against a real farm on loopback, with the shipped limits; prints a table, writes JSON, exits 1 unless clean")
  .option("--minutes <m>", "how long the attacks last (the honest users chat as long)", num("--minutes", 0.1), 30)
  .option("--users <n>", "honest users (SCRAM over STARTTLS, XEP-0198), over two front ends", num("--users", 2), 300)
  .option("--chat-rate <r>", "messages a second each honest user sends (the default rates allow 50 stanzas a second)", num("--chat-rate", 0.001), 0.2)
  .option("--attack-every <s>", "seconds between two attacks' launches", num("--attack-every", 0.05), 0.25)
  .option("--max-attacks <n>", "attacks running at once at most", num("--max-attacks", 1), 24)
  .option("--guessed <n>", "honest accounts the password guessers try; their owners log in again and again", num("--guessed", 1), 4)
  .option("--relogin-every <s>", "seconds between two rounds of the owners' logins", num("--relogin-every", 1), 15)
  .option("--sample-every <s>", "seconds between two samples of each process's memory and CPU", num("--sample-every", 0.5), 5)
  .option("--settle <s>", "seconds the farm is left alone at the end before memory is read", num("--settle", 0), 60)
  .option("--until-near", "end the settling early, as soon as every process's memory is back near its start (a short run's check)", false)
  .option("-o, --out <file>", "JSON results: everything, with the per-interval samples and every attack", "soak-results.json")
  .option("--keep", "keep the farm's directory (its config, store and log) and say where", false)
  .action(async (o: SoakOptions) => {
    const report = await runSoak(o, process.argv.slice(1).join(" "));
    fs.writeFileSync(o.out, JSON.stringify(report, null, 2) + "\n");
    process.stdout.write("\n" + soakTable(report));
    process.stdout.write(`\neverything: ${o.out}${o.keep ? `; the farm: ${report.farm.dir}` : ""}\n`);
    process.exitCode = report.verdict.clean ? 0 : 1;
  });

program.parseAsync().catch((err: Error) => {
  process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
  process.exit(2);
});
