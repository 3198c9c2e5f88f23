// `xfarm bench` (`npm run bench`): xfarm side by side with Debian's Prosody
// and ejabberd under the bundled simulator; bench/bench.ts does the work.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";

interface BenchCliOptions {
  compare?: boolean;
  targets?: string;
  only?: string;
  sessions: string;
  idleHold: string;
  idleSecurity: string;
  c2s: string;
  idleMechanism: string;
  idleInactive?: boolean;
  mam?: boolean;
  loginRates: string;
  loginSeconds: string;
  chatRates: string;
  chatSeconds: string;
  chatUsers: string;
  stormSessions: string;
  stormDelay: string;
  stormHold: string;
  anchors: string;
  tsung?: boolean;
  tsungDir?: string;
  tsungIdle: string;
  tsungLoginRates: string;
  tsungMsgRates: string;
  tsungLoginSeconds: string;
  tsungMsgSeconds: string;
  out: string;
  workers: string;
  sources: string;
  quick?: boolean;
  verbose?: boolean;
}

/**
 * bench/anchors: the anchors' configs (../shared/anchors), carried in the
 * repository so that the bench runs from any checkout.
 */
const DEFAULT_ANCHORS = fileURLToPath(new URL("../../bench/anchors", import.meta.url));

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const numbers = (s: string, what: string) =>
  list(s).map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${what}: "${x}" is not a positive number`);
    return n;
  });

/**
 * The team's anchors with run.sh: ../shared/anchors beside this checkout, or,
 * from a git worktree, beside the main checkout.
 */
function defaultTsungDir(): string {
  const checkout = fileURLToPath(new URL("../..", import.meta.url));
  const beside = path.resolve(checkout, "../shared/anchors");
  if (fs.existsSync(beside)) return beside;
  const git = spawnSync("git", ["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: checkout, encoding: "utf8" });
  return git.status === 0 ? path.resolve(path.dirname(git.stdout.trim()), "../shared/anchors") : beside;
}

/** A number, 0 allowed. */
function nonNegative(s: string, what: string): number {
  const n = Number(s);
  if (s.trim() === "" || !(n >= 0)) throw new Error(`${what}: "${s}" is not a number ≥ 0`);
  return n;
}

export function benchCommand(): Command {
  return new Command("bench")
    .description("benchmark xfarm (and with --compare Debian's prosody and ejabberd) with the simulator; prints one table, writes JSON")
    .option("--compare", "also measure prosody and ejabberd, from the anchors' configs (npm run bench --compare works too)")
    .option("--targets <list>", "servers to measure: xfarm,prosody,ejabberd (default xfarm; with --compare all three)")
    .option("--only <list>", "measurements: idle,login,chat,storm (default all)")
    .option("--sessions <n>", "idle sessions to hold (a one-process server holds 19,000 at most here)", "20000")
    .option("--idle-hold <s>", "seconds idle sessions stay after the last login; RSS is sampled over the last 10 (from the 3rd on at the earliest)", "30")
    .option("--idle-security <list>", "idle measurements: none (plain TCP), starttls, or both", "none,starttls")
    .option("--c2s <n>", "c2s processes of the measured farm (each holds 19,000 sessions at most)", "2")
    .option("--mam", "the measured farm archives messages (XEP-0313 MAM), as it ships; without it MAM is off, as in the anchors' Prosody and ejabberd")
    .addOption(new Option("--idle-mechanism <mech>", "how idle sessions authenticate").choices(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]).default("PLAIN"))
    .option("--idle-inactive", "idle sessions say XEP-0352 <inactive/> after their roster, so KB/session includes what client state indication costs")
    .option("--login-rates <list>", "login ramp, logins/s", "200,300,400,600,800,1200,1600,2000,2500,3000")
    .option("--login-seconds <s>", "arrival window of each login step", "10")
    .option("--chat-rates <list>", "chat ramp, messages/s in all", "1000,2000,4000,6000,8000,12000,16000")
    .option("--chat-seconds <s>", "chat window of each step", "20")
    .option("--chat-users <n>", "users online in the chat steps", "1000")
    .option("--storm-sessions <n>", "reconnect storm: sessions held over the c2s before the busiest is SIGKILLed", "19000")
    .option("--storm-delay <s>", "reconnect storm: each client of the killed c2s waits a random 0 … s seconds before reconnecting", "5")
    .option("--storm-hold <s>", "reconnect storm: seconds the sessions stay after the kill (their time to come back)", "60")
    .option("--anchors <dir>", "folder with the anchors' prosody.cfg.lua, ejabberd.yml, ejabberdctl.cfg and inetrc (e.g. ../shared/anchors)", DEFAULT_ANCHORS)
    .option("--tsung", "add the Tsung column: drive the anchors' run.sh (on by default with --compare when tsung and run.sh are there)")
    .option("--no-tsung", "leave the Tsung column out")
    .option("--tsung-dir <dir>", "folder of the anchors' run.sh (default ../shared/anchors beside the checkout)")
    .option("--tsung-idle <n>", "Tsung: idle sessions held (0: none)", "19000")
    .option("--tsung-login-rates <list>", "Tsung: login ramp, logins/s", "400,800,1200,1600,2000,2500")
    .option("--tsung-msg-rates <list>", "Tsung: chat ramp, messages/s in all", "4000,8000,10000,13500,16000")
    .option("--tsung-login-seconds <s>", "Tsung: login window (run.sh's DUR)", "20")
    .option("--tsung-msg-seconds <s>", "Tsung: chat window (run.sh's MSG_WINDOW)", "30")
    .option("-o, --out <file>", "JSON results", "bench-results.json")
    .option("--workers <n>", "simulator worker processes", "2")
    .option("--sources <range>", "loopback source addresses for the simulator", "127.0.0.2-127.0.0.17")
    .addOption(new Option("--quick", "a short run for a smoke check: 2,000 sessions, short ramps").conflicts(["sessions"]))
    .option("-v, --verbose", "print each simulator run's progress lines")
    .action(async (o: BenchCliOptions) => {
      const { runBench, benchTable, MEASUREMENTS } = await import("../bench/bench.js");
      // `npm run bench --compare` hands the flag to npm, which passes it on as npm_config_compare.
      const compare = o.compare || process.env.npm_config_compare === "true";
      const targets = list(o.targets ?? (compare ? "xfarm,prosody,ejabberd" : "xfarm"));
      for (const t of targets) if (!["xfarm", "prosody", "ejabberd"].includes(t)) throw new Error(`--targets: unknown server ${t}`);
      const only = list(o.only ?? MEASUREMENTS.join(","));
      for (const m of only) if (!(MEASUREMENTS as readonly string[]).includes(m)) throw new Error(`--only: unknown measurement ${m}`);
      const quick = o.quick === true;
      const tsungDir = path.resolve(o.tsungDir ?? defaultTsungDir());
      const { tsungAbsent } = await import("../bench/bench-tsung.js");
      // With --compare, on wherever Tsung can run; --tsung asks for it (the column then says what is missing).
      const tsung = o.tsung ?? (compare && tsungAbsent(tsungDir) === null);
      const report = await runBench(
        {
          targets: targets as ("xfarm" | "prosody" | "ejabberd")[],
          only: only as (typeof MEASUREMENTS)[number][],
          sessions: quick ? 2000 : numbers(o.sessions, "--sessions")[0]!,
          idleHold: quick ? 8 : numbers(o.idleHold, "--idle-hold")[0]!,
          idleSecurity: list(o.idleSecurity).map((x) => {
            if (x !== "none" && x !== "starttls") throw new Error(`--idle-security: "${x}" is not none or starttls`);
            return x;
          }),
          c2s: numbers(o.c2s, "--c2s")[0]!,
          idleMechanism: o.idleMechanism as "PLAIN" | "SCRAM-SHA-1" | "SCRAM-SHA-256",
          idleInactive: o.idleInactive === true,
          mam: o.mam === true,
          loginRates: quick ? [200, 400] : numbers(o.loginRates, "--login-rates"),
          loginSeconds: quick ? 3 : numbers(o.loginSeconds, "--login-seconds")[0]!,
          chatRates: quick ? [500, 1000] : numbers(o.chatRates, "--chat-rates"),
          chatSeconds: quick ? 3 : numbers(o.chatSeconds, "--chat-seconds")[0]!,
          chatUsers: quick ? 200 : numbers(o.chatUsers, "--chat-users")[0]!,
          stormSessions: quick ? 2000 : numbers(o.stormSessions, "--storm-sessions")[0]!,
          stormDelay: nonNegative(o.stormDelay, "--storm-delay"),
          stormHold: quick ? 30 : numbers(o.stormHold, "--storm-hold")[0]!,
          anchors: path.resolve(o.anchors),
          tsung: tsung
            ? {
                dir: tsungDir,
                idle: quick ? 2000 : nonNegative(o.tsungIdle, "--tsung-idle"),
                loginRates: quick ? [200] : numbers(o.tsungLoginRates, "--tsung-login-rates"),
                msgRates: quick ? [1000] : numbers(o.tsungMsgRates, "--tsung-msg-rates"),
                loginSeconds: quick ? 5 : numbers(o.tsungLoginSeconds, "--tsung-login-seconds")[0]!,
                msgSeconds: quick ? 10 : numbers(o.tsungMsgSeconds, "--tsung-msg-seconds")[0]!,
              }
            : null,
          out: o.out,
          workers: numbers(o.workers, "--workers")[0]!,
          sources: o.sources,
          verbose: o.verbose === true,
        },
        process.argv.slice(1).join(" "),
      );
      process.stdout.write("\n" + benchTable(report));
      process.stdout.write(`\nevery step: ${o.out}\n`);
    });
}
