// `xfarm faults` (`npm run faults`): the fault harness, sim/faults.ts, which
// docs/failover.md explains: each fault against a fresh local farm under a
// counting load, one table row each.
import { Command, Option } from "commander";

interface FaultsCliOptions {
  users: string;
  offline: string;
  rate: string;
  faults?: string;
  duration: string;
  pause: string;
  store: "sqlite" | "mariadb";
  json?: string;
  discard: string;
  keep?: boolean;
}

const positive = (v: string, what: string, min = 1) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${what} must be a number, at least ${min} (not "${v}")`);
  return n;
};

export function faultsCommand(): Command {
  return new Command("faults")
    .description("inject each fault (SIGKILL, SIGSTOP, restarts, database outages) into a fresh local farm under a counting load; prints sent, received, lost, duplicated, dropped, resumed and recovery per fault")
    .option("--users <n>", "users, over both front ends, half of them with XEP-0198 (at most 5,000)", "200")
    .option("--offline <fraction>", "share of the users that stay offline until the final round, so that messages to them are stored offline", "0.1")
    .option("--rate <r>", "messages a second, all users together (at most 5,000)", "500")
    .option("--faults <list>", "faults to run, in order: none,kill-sm,kill-router,stop-router,partition-routers,kill-c2s,stop-c2s,restart-sm,db-stop,db-pause (default: all that the database allows)")
    .option("--duration <s>", "seconds of load per fault; the fault comes a quarter of the way in (at most 600)", "60")
    .option("--pause <s>", "seconds a SIGSTOP or a database outage lasts (at most 300)", "20")
    .addOption(new Option("--store <kind>", "the farm's store: embedded SQLite, or a private MariaDB (needed by db-stop and db-pause); not the global --db, which names one database").choices(["sqlite", "mariadb"]).default("sqlite"))
    .option("--json <file>", "also write every figure as JSON")
    .option("--discard <n>", "receipts the clients throw away on purpose, which the table must show lost (a check of the harness's own counting)", "0")
    .option("--keep", "keep each farm's directory (config, store, log)")
    .action(async (o: FaultsCliOptions) => {
      const { FAULTS, DB_FAULTS, runFaults, faultsTable, writeJson } = await import("../sim/faults.js");
      type Fault = (typeof FAULTS)[number];
      const faults = (o.faults ? o.faults.split(",").map((x) => x.trim()).filter(Boolean) : FAULTS.filter((f) => o.store === "mariadb" || !DB_FAULTS.includes(f))) as Fault[];
      for (const f of faults) {
        if (!FAULTS.includes(f)) throw new Error(`--faults: unknown fault ${f} (${FAULTS.join(", ")})`);
        if (DB_FAULTS.includes(f) && o.store !== "mariadb") throw new Error(`--faults: ${f} needs --store mariadb`);
      }
      const users = positive(o.users, "--users", 2);
      const rate = positive(o.rate, "--rate");
      const share = positive(o.offline, "--offline", 0);
      if (share > 0.5) throw new Error("--offline must be at most 0.5");
      const duration = positive(o.duration, "--duration", 2);
      const pause = positive(o.pause, "--pause");
      if (users > 5000 || rate > 5000 || duration > 600 || pause > 300) throw new Error("--users, --rate at most 5,000, --duration at most 600, --pause at most 300");
      const report = await runFaults(
        { users, offline: Math.floor(users * share), rate, faults, duration, pause, db: o.store, discard: positive(o.discard, "--discard", 0), keep: o.keep === true },
        process.argv.slice(1).join(" "),
      );
      if (o.json) writeJson(o.json, report);
      process.stdout.write("\n" + faultsTable(report));
    });
}
