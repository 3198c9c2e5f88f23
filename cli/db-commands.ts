// `xfarm db status|migrate`: the schema of the farm's database (an existing one: cli/farm-database.ts).
import { Command } from "commander";
import { normalizeStoredJids } from "../xdb-sql/jid-migration.js";
import { describeStore } from "../xdb-sql/open-store.js";
import type { LoadConfig } from "./config-option.js";
import { openFarmStore } from "./farm-database.js";

export function dbCommands(load: LoadConfig): Command {
  const db = new Command("db").description("the database's schema: status and migrations");

  db.command("status")
    .description("print the schema version of the database and of this xfarm")
    .action(async (_opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const store = await openFarmStore(c, "connect");
      try {
        const { current, latest } = await store.schemaVersion();
        const state =
          current === latest ? "up to date" : current < latest ? `${latest - current} migration(s) to run: xfarm db migrate` : "NEWER than this xfarm: upgrade xfarm";
        process.stdout.write(`${describeStore(c.db)}\nschema version ${current}, this xfarm knows ${latest}: ${state}\n`);
      } finally {
        await store.close();
      }
    });

  db.command("migrate")
    .description(
      "bring the schema up to date (safe on a live database; processes also do it when they start), then the stored JIDs to their RFC 7622 form",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const store = await openFarmStore(c, "connect");
      try {
        const before = (await store.schemaVersion()).current;
        await store.migrate();
        const after = (await store.schemaVersion()).current;
        process.stdout.write(before === after ? `schema already at version ${after}\n` : `schema migrated from version ${before} to ${after}\n`);
        const jids = await normalizeStoredJids(store);
        const lines = [
          ...jids.accountsRenamed.map(([from, to]) => `account ${from} renamed ${to}`),
          ...jids.contactsRenamed.map(([from, to]) => `roster contact ${from} renamed ${to}`),
          ...jids.left,
          ...jids.refused.map((r) => `REFUSED: ${r}`),
        ];
        process.stdout.write(lines.length ? lines.map((l) => `${l}\n`).join("") : "stored JIDs already in their RFC 7622 form\n");
        if (jids.refused.length) throw new Error(`${jids.refused.length} account(s) need the admin; then run xfarm db migrate again`);
      } finally {
        await store.close();
      }
    });

  return db;
}
