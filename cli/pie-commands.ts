// `xfarm export` and `xfarm import`: accounts in and out in XEP-0227's
// portable format, to move users from Prosody or ejabberd and back.
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { exportPie, exportPieFiles } from "../xdb-sql/pie-export.js";
import { importUser } from "../xdb-sql/pie-import.js";
import { readPie } from "../xdb-sql/pie-reader.js";
import { overLimits, smLimits } from "../sm/limits.js";
import { servedDomain } from "../lib/config.js";
import type { LoadConfig } from "./config-option.js";
import { openFarmStore } from "./farm-database.js";

/** Progress on a terminal: one line rewritten in place, at most ten times a second. */
function progressLine(): { show(text: string): void; done(): void } {
  const tty = process.stderr.isTTY;
  let last = 0;
  let shown = false;
  return {
    show(text) {
      if (!tty || Date.now() - last < 100) return;
      last = Date.now();
      shown = true;
      process.stderr.write(`\r${text}\x1b[K`);
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}

/** The XML files named: a directory stands for the .xml files in it (Prosody writes one per user). */
function inputFiles(args: string[]): string[] {
  return args.flatMap((a) => {
    if (!fs.statSync(a).isDirectory()) return [a];
    return fs
      .readdirSync(a)
      .filter((f) => f.endsWith(".xml"))
      .sort()
      .map((f) => path.join(a, f));
  });
}

export function addPieCommands(program: Command, load: LoadConfig): void {
  program
    .command("export")
    .description("write every account (keys, roster, offline messages, vCard, private XML, PEP) as XEP-0227 XML")
    .argument("[file]", "where to write; - or nothing for standard output")
    .option("-d, --domain <domain...>", "only these domains (each one the farm serves)")
    .option("--per-user <dir>", "one file per account, <dir>/<user@host>.xml, as Prosody's prosody-migrator reads them")
    .action(async (file: string | undefined, opts: { config?: string; domain?: string[]; perUser?: string }) => {
      const c = load(opts).config;
      if (file !== undefined && opts.perUser !== undefined) throw new Error("give a file or --per-user, not both");
      const domains = (opts.domain ?? []).map((d) => servedDomain(c, d));
      const store = await openFarmStore(c);
      const toFile = file !== undefined && file !== "-";
      const progress = progressLine();
      const options = { domains, progress: (done: number, total: number) => progress.show(`exported ${done} of ${total} users`) };
      try {
        let n: number;
        if (opts.perUser !== undefined) {
          n = await exportPieFiles(store, opts.perUser, options);
        } else {
          // 0600: the file holds SCRAM keys, as the database does.
          const out = toFile ? fs.createWriteStream(file, { mode: 0o600 }) : process.stdout;
          n = await exportPie(store, out, options);
          if (toFile) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        }
        progress.done();
        const where = opts.perUser !== undefined ? ` to ${opts.perUser}/` : toFile ? ` to ${file}` : "";
        process.stderr.write(`exported ${n} user(s)${where}\n`);
      } finally {
        await store.close();
      }
    });

  program
    .command("import")
    .description("create accounts from XEP-0227 files (Prosody's prosody-migrator, ejabberd's export_piefxis, xfarm export)")
    .argument("<files...>", "XML files, or directories of them")
    .option("--replace", "delete an existing account and import it afresh (default: leave it alone)")
    .action(async (args: string[], opts: { config?: string; replace?: boolean }) => {
      const c = load(opts).config;
      const store = await openFarmStore(c);
      const counts = { imported: 0, exists: 0, refused: 0 };
      const limits = smLimits(c);
      const progress = progressLine();
      try {
        for (const file of inputFiles(args)) {
          for await (const u of readPie(file)) {
            const host = u.host.toLowerCase();
            if (!c.domains.includes(host)) {
              counts.refused++;
              process.stderr.write(`${u.user.attrs.name as string}@${host}: refused: ${host} is not served here (domains: ${c.domains.join(", ")})\n`);
              continue;
            }
            const r = await importUser(store, { ...u, host }, { replace: opts.replace === true, iterations: c.c2s.scram_iterations });
            counts[r.status]++;
            if (r.status !== "imported") {
              progress.done();
              process.stderr.write(`${r.jid}: ${r.status === "exists" ? "skipped" : "refused"}: ${r.reason}\n`);
            } else {
              if (r.skipped.length > 0) {
                progress.done();
                process.stderr.write(`${r.jid}: imported without ${r.skipped.join(", ")} (not supported by xfarm)\n`);
              }
              const over = await overLimits(store, r.jid, limits);
              if (over.length > 0) {
                progress.done();
                process.stderr.write(`${r.jid}: imported whole, over the limits: ${over.join("; ")}\n`);
              }
            }
            progress.show(`imported ${counts.imported} users`);
          }
        }
        progress.done();
        process.stderr.write(`imported ${counts.imported} user(s), skipped ${counts.exists} existing, refused ${counts.refused}\n`);
        if (counts.refused > 0) process.exitCode = 1;
      } finally {
        await store.close();
      }
    });
}
