// `xfarm user add|passwd|del|list`: accounts, straight in the store, so they
// work whether or not the farm runs.
import { Command } from "commander";
import { bare, parseJid } from "../jid.js";
import { deriveCredentials } from "../sasl/scram-credentials.js";
import { openStore } from "../../xdb-sql/open-store.js";
import type { Store } from "../../xdb-sql/store.js";
import type { Config } from "../config.js";
import { configOption, type LoadConfig } from "./config-option.js";
import { adminRequest } from "./admin-link.js";
import { readPassword } from "./read-password.js";

function accountJid(text: string, config: Config): string {
  const j = parseJid(text);
  if (!j || !j.local || j.resource) throw new Error(`"${text}" is not a bare JID like alice@${config.domains[0]}`);
  if (!config.domains.includes(j.domain)) throw new Error(`${j.domain} is not served here (domains: ${config.domains.join(", ")})`);
  return bare(j);
}

async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config.db);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function passwordFor(given: string | undefined, jid: string): Promise<string> {
  const password = given ?? (await readPassword(`Password for ${jid}: `));
  if (!password) throw new Error("the password is empty");
  return password;
}

export function userCommands(load: LoadConfig): Command {
  const user = new Command("user").description("manage accounts (works while the farm runs)");

  user
    .command("add")
    .description("create an account; the password is prompted for when not given")
    .argument("<jid>", "bare JID, e.g. alice@localhost")
    .argument("[password]", "the password (for scripts)")
    .addOption(configOption())
    .action(async (jidText: string, password: string | undefined, opts: { config?: string }) => {
      const c = load(opts).config;
      const jid = accountJid(jidText, c);
      const creds = await deriveCredentials(await passwordFor(password, jid), c.c2s.scram_iterations);
      const created = await withStore(c, (s) => s.createAccount(jid, creds));
      if (!created) throw new Error(`${jid} already exists`);
      process.stdout.write(`created ${jid}\n`);
    });

  user
    .command("passwd")
    .description("set a new password (new salted SCRAM keys); prompted for when not given")
    .argument("<jid>")
    .argument("[password]")
    .addOption(configOption())
    .action(async (jidText: string, password: string | undefined, opts: { config?: string }) => {
      const c = load(opts).config;
      const jid = accountJid(jidText, c);
      const creds = await deriveCredentials(await passwordFor(password, jid), c.c2s.scram_iterations);
      if (!(await withStore(c, (s) => s.setCredentials(jid, creds)))) throw new Error(`${jid} does not exist`);
      process.stdout.write(`password changed for ${jid}\n`);
    });

  user
    .command("del")
    .description("delete an account with its roster and offline messages")
    .argument("<jid>")
    .addOption(configOption())
    .action(async (jidText: string, opts: { config?: string }) => {
      const c = load(opts).config;
      const jid = accountJid(jidText, c);
      if (!(await withStore(c, (s) => s.deleteAccount(jid)))) throw new Error(`${jid} does not exist`);
      process.stdout.write(`deleted ${jid}\n`);
      // A running farm disconnects the account's sessions; without one there are none.
      const told = await adminRequest(c, { op: "user-deleted", user: jid }, "result", 2_000).then(
        () => true,
        () => false,
      );
      process.stdout.write(told ? "its sessions on the running farm were ended\n" : "no running farm reached; no sessions to end\n");
    });

  user
    .command("list")
    .description("list accounts, of one domain or all")
    .argument("[domain]")
    .addOption(configOption())
    .action(async (domain: string | undefined, opts: { config?: string }) => {
      const c = load(opts).config;
      const users = await withStore(c, (s) => s.listAccounts(domain?.toLowerCase()));
      process.stdout.write(users.map((u) => `${u}\n`).join(""));
    });

  return user;
}
