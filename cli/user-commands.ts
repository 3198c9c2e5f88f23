// `xfarm user add|passwd|del|list`: accounts, in the farm's store (never
// another: cli/farm-database.ts), so they work whether or not the farm runs.
import { Command } from "commander";
import { deriveCredentials } from "../lib/sasl/scram-credentials.js";
import type { Store } from "../xdb-sql/store.js";
import { servedAccount, servedDomain, type Config } from "../lib/config.js";
import type { LoadConfig } from "./config-option.js";
import { openFarmStore } from "./farm-database.js";
import { adminRequest } from "../lib/link/admin-link.js";
import { readNewPassword } from "./read-password.js";

/**
 * An account named on the command line: as it is stored when so stored (a
 * name from before JIDs were normalized, which `xfarm db migrate` left for
 * the admin), else its RFC 7622 form.
 */
async function storedAccount(store: Store, text: string, config: Config): Promise<string> {
  return (await store.accountExists(text)) ? text : servedAccount(config, text);
}

/** How long `user del` waits for the farm: thousands of subscriptions may be cancelled first. */
const DELETE_TIMEOUT_MS = 30_000;

/**
 * The farm deletes an account itself (protocol §1.7): its sms end its sessions, so that its contacts see
 * it go unavailable, before the owner cancels its subscriptions and deletes it. Says what to tell the admin,
 * and whether the farm did it; when not, the caller deletes it in the store.
 */
async function deleteOnFarm(config: Config, jid: string): Promise<{ done: boolean; said: string }> {
  const r = await adminRequest(config, { op: "user-delete", user: jid }, "result", DELETE_TIMEOUT_MS).catch(() => null);
  if (!r) return { done: false, said: "no running farm reached; no sessions to end" };
  if (!r.ok) return { done: false, said: `the running farm did not delete it (${r.error ?? "refused"}); deleted in the store, its contacts not told` };
  return { done: true, said: "its sessions on the running farm were ended and its contacts told" };
}

/**
 * A running farm disconnects the sessions of a renamed account's old name
 * (`user-deleted`), or of an account whose password changed, so that they
 * log in again (`user-password-changed`); without one there are none.
 */
async function endSessions(config: Config, op: "user-deleted" | "user-password-changed", jid: string): Promise<void> {
  const told = await adminRequest(config, { op, user: jid }, "result", 2_000).then(
    () => true,
    () => false,
  );
  process.stdout.write(told ? "its sessions on the running farm were ended\n" : "no running farm reached; no sessions to end\n");
}

async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openFarmStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function passwordFor(given: string | undefined, jid: string): Promise<string> {
  const password = given ?? (await readNewPassword(`Password for ${jid}: `));
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
    .action(async (jidText: string, password: string | undefined, _opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const jid = servedAccount(c, jidText);
      const creds = await deriveCredentials(await passwordFor(password, jid), c.c2s.scram_iterations);
      const created = await withStore(c, (s) => s.createAccount(jid, creds));
      if (!created) throw new Error(`${jid} already exists`);
      process.stdout.write(`created ${jid}\n`);
    });

  user
    .command("passwd")
    .description("set a new password (new salted SCRAM keys) and end the account's sessions on a running farm; prompted for when not given")
    .argument("<jid>")
    .argument("[password]")
    .action(async (jidText: string, password: string | undefined, _opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const jid = servedAccount(c, jidText);
      const creds = await deriveCredentials(await passwordFor(password, jid), c.c2s.scram_iterations);
      if (!(await withStore(c, (s) => s.setCredentials(jid, creds)))) throw new Error(`${jid} does not exist`);
      process.stdout.write(`password changed for ${jid}\n`);
      await endSessions(c, "user-password-changed", jid);
    });

  user
    .command("del")
    .description("delete an account with its roster and offline messages")
    .argument("<jid>")
    .action(async (jidText: string, _opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const jid = await withStore(c, async (s) => {
        const stored = await storedAccount(s, jidText, c);
        if (!(await s.accountExists(stored))) throw new Error(`${stored} does not exist`);
        return stored;
      });
      const farm = await deleteOnFarm(c, jid);
      // Without a farm that did it there are no sessions to end: the account goes from the store here.
      if (!farm.done) await withStore(c, (s) => s.deleteAccount(jid));
      process.stdout.write(`deleted ${jid}\n${farm.said}\n`);
    });

  user
    .command("rename")
    .description("move an account with all it holds to a new JID, and rename it in every roster")
    .argument("<jid>", "the account, as stored (xfarm user list) or in any form of its JID")
    .argument("<new-jid>")
    .action(async (fromText: string, toText: string, _opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      const to = servedAccount(c, toText);
      const { from, kept } = await withStore(c, async (s) => {
        const from = await storedAccount(s, fromText, c);
        if (!(await s.renameAccount(from, to))) throw new Error(`${from} does not exist or ${to} does`);
        return { from, kept: (await s.renameRosterContact(from, to)).kept };
      });
      process.stdout.write(`renamed ${from} to ${to}\n`);
      if (kept.length) process.stdout.write(`the rosters of ${kept.join(", ")} already held ${to}: their item for ${from} was left\n`);
      await endSessions(c, "user-deleted", from);
    });

  user
    .command("list")
    .description("list accounts, of one domain or all")
    .argument("[domain]")
    .action(async (domain: string | undefined, _opts: unknown, cmd: Command) => {
      const c = load(cmd.optsWithGlobals()).config;
      // All of them: no domain.
      const served = domain === undefined ? undefined : servedDomain(c, domain);
      const users = await withStore(c, (s) => s.listAccounts(served));
      process.stdout.write(users.map((u) => `${u}\n`).join(""));
    });

  return user;
}
