// A private Prosody 0.12 (Debian's) for tests: one virtual host on a loopback
// port with a temporary data directory, filled by real XMPP clients and then
// exported by Prosody's own prosody-migrator as XEP-0227 files, which xfarm's
// importer can be tested against. Under CI=true a missing Prosody is an
// error, never a skip.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePortBase } from "../../sim/free-ports.js";
import { connectClient, xml, type TestClient } from "./xmppjs.js";
import { portOpen } from "../../sim/port-open.js";

const PROSODY = "/usr/bin/prosody";
const PROSODYCTL = "/usr/bin/prosodyctl";
const MIGRATOR = "/usr/bin/prosody-migrator";
// prosody-migrator's own interpreter (its #! line), run directly so that a
// prelude can redirect its data directory (see exportXep0227).
const LUA = "/usr/bin/lua5.4";

/** What populateProsody puts in, so an import test can check against it. */
export const PROSODY_FIXTURE = {
  // connectClient (harness/xmppjs.ts) logs in to "localhost".
  domain: "localhost",
  users: [
    { name: "alice", password: "alice-pw" },
    { name: "bob", password: "bob-pw" },
    { name: "carol", password: "carol-pw" },
  ],
  roster: {
    alice: [{ jid: "bob@localhost", name: "Bobby", groups: ["Friends"], subscription: "both" }],
    bob: [{ jid: "alice@localhost", subscription: "both" }],
    // carol asked alice and got no answer.
    carol: [{ jid: "alice@localhost", subscription: "none", ask: "subscribe" }],
  },
  /** Subscription requests alice has not answered (pending in). */
  pendingIn: { alice: ["carol@localhost"] },
  vcard: { user: "alice", fn: "Alice Liddell", nickname: "alice" },
  private: {
    user: "alice",
    bookmark: { jid: "tea@conference.localhost", name: "Tea Party", autojoin: "true", nick: "alice" },
    prefs: { xmlns: "urn:example:prefs", theme: "dark" },
  },
  pep: {
    user: "alice",
    nick: { node: "http://jabber.org/protocol/nick", id: "current", nick: "Alice" },
    // Published with publish-options; max_items so both items are kept
    // (PEP nodes default to max_items 1).
    status: {
      node: "urn:example:status",
      accessModel: "open",
      maxItems: "10",
      items: [
        { id: "s1", text: "reading" },
        { id: "s2", text: "writing" },
      ],
    },
  },
} as const;

export interface ProsodyUser {
  name: string;
  password: string;
}

export class Prosody {
  private proc: ChildProcess | null = null;
  private output = "";

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly domain: string,
    readonly users: readonly ProsodyUser[],
  ) {}

  static available(): boolean {
    return [PROSODY, PROSODYCTL, MIGRATOR, LUA].every((f) => fs.existsSync(f));
  }

  static async start(opts: { domain: string; users: readonly ProsodyUser[] }): Promise<Prosody> {
    if (!Prosody.available()) throw new Error(`Prosody is not installed (${PROSODY}, ${MIGRATOR}): apt-get install prosody`);
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "xfarm-prosody-"));
    const p = new Prosody(dir, await freePortBase([0]), opts.domain, opts.users);
    try {
      fs.mkdirSync(p.dataDir);
      // An empty certificate directory: none is needed, and Prosody logs an error if the directory is missing.
      fs.mkdirSync(path.join(dir, "certs"));
      fs.writeFileSync(p.configPath, p.config());
      // The internal store is plain files, read on each login, so accounts can be made before start.
      for (const u of opts.users) p.ctl(["register", u.name, opts.domain, u.password]);
      await p.run();
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }

  get dataDir(): string {
    return path.join(this.dir, "data");
  }

  get configPath(): string {
    return path.join(this.dir, "prosody.cfg.lua");
  }

  get logPath(): string {
    return path.join(this.dir, "prosody.log");
  }

  private config(): string {
    const s = luaString;
    return `-- Written by test/harness/prosody.ts
run_as_root = true
pidfile = ${s(path.join(this.dir, "prosody.pid"))}
data_path = ${s(this.dataDir)}
certificates = ${s(path.join(this.dir, "certs"))}
log = { info = ${s(this.logPath)} }

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${this.port} }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }

-- mod_vcard keeps vcard-temp as it was set ("vcard" store, exported as
-- <vCard/>); mod_vcard_legacy would turn it into vCard4 PEP nodes instead.
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "vcard"; "private"; "pep"; "offline" }
modules_disabled = { "s2s"; "s2s_auth_certs" }
allow_registration = false

-- Loopback only: no TLS, PLAIN allowed in clear (clients still pick SCRAM-SHA-1).
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
-- Prosody's default: SCRAM-SHA-1 keys, no password, stored (and exported).
authentication = "internal_hashed"
storage = "internal"

VirtualHost ${s(this.domain)}
`;
  }

  private ctl(args: string[]): void {
    const r = spawnSync(PROSODYCTL, ["--config", this.configPath, ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`prosodyctl ${args[0]} failed (${r.status}): ${r.stdout}${r.stderr}`);
  }

  private async run(): Promise<void> {
    // -F: foreground (the config's "daemonize" option is deprecated in 0.12).
    const proc = spawn(PROSODY, ["--config", this.configPath, "-F"], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    proc.stdout!.on("data", (d) => (this.output += d));
    proc.stderr!.on("data", (d) => (this.output += d));
    const deadline = Date.now() + 20_000;
    while (!(await portOpen(this.port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`prosody did not start (exit ${proc.exitCode}): ${this.output.slice(-2000)}\n${this.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  logTail(): string {
    try {
      return fs.readFileSync(this.logPath, "utf8").slice(-4000);
    } catch {
      return "";
    }
  }

  /** Stops the server, keeping its data directory. */
  private async halt(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  async stop(opts: { keep?: boolean } = {}): Promise<void> {
    await this.halt();
    if (!opts.keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Stops the server (its internal store must be at rest) and has
   * prosody-migrator copy the internal store to XEP-0227 files, one per user
   * (user@domain.xml). Returns their paths, sorted; they live in the temp
   * dir, so read them before stop() (or stop({ keep: true })).
   */
  async exportXep0227(): Promise<string[]> {
    await this.halt();
    const outDir = path.join(this.dir, "xep0227");
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir);
    this.migrate(outDir, "internal", "xep0227");
    return fs
      .readdirSync(outDir)
      .filter((f) => f.endsWith(".xml"))
      .sort()
      .map((f) => path.join(outDir, f));
  }

  /**
   * The other way: stops the server, has prosody-migrator copy a directory
   * of XEP-0227 files (one per user, user@domain.xml) into the internal
   * store, and starts the server again on it.
   */
  async importXep0227(dir: string): Promise<void> {
    await this.halt();
    this.migrate(dir, "xep0227", "internal");
    await this.run();
  }

  /** Runs prosody-migrator between the internal store and the XEP-0227 files in `xepDir`. */
  private migrate(xepDir: string, from: "internal" | "xep0227", to: "internal" | "xep0227"): void {
    const cfgPath = path.join(this.dir, "migrator.cfg.lua");
    // "pep-pubsub" copies the node configs (store "pep") and then, per node,
    // its items (archive store "pep_<node>"): the pep_* stores need no listing.
    // "accounts" must come first: mod_storage_xep0227 only adds other data to
    // a user's file once it exists.
    const stores = ["accounts", "roster", "vcard", "private", "pep-pubsub"];
    const side = (type: string) =>
      type === "internal"
        ? `type = "internal";\n  path = ${luaString(this.dataDir)};\n  hosts = { [${luaString(this.domain)}] = { ${stores.map(luaString).join("; ")} } };`
        : `type = "xep0227";\n  hosts = { [${luaString(this.domain)}] = { ${stores.map(luaString).join("; ")} } };`;
    fs.writeFileSync(cfgPath, `input {\n  ${side(from)}\n}\noutput {\n  ${side(to)}\n}\n`);
    // mod_storage_xep0227 reads and writes in Prosody's data path, which
    // prosody-migrator takes from its hard-coded CFG_DATADIR
    // (/var/lib/prosody), not from its config: the prelude makes that global
    // assignment yield our directory instead. --root: do not switch to the
    // prosody user (which could not read this root-owned temp dir).
    const prelude = `local dir = ${luaString(xepDir)}
setmetatable(_G, { __newindex = function(t, k, v) if k == "CFG_DATADIR" then v = dir end rawset(t, k, v) end })`;
    const r = spawnSync(LUA, ["-e", prelude, MIGRATOR, "--root", "--config", cfgPath, "input", "output"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`prosody-migrator failed (${r.status}): ${r.stdout}${r.stderr}`);
  }
}

/**
 * Puts PROSODY_FIXTURE in as real clients (xmpp.js over plain TCP) would:
 * mutual subscriptions, an unanswered request, a vCard, private XML and PEP.
 */
export async function populateProsody(p: Prosody): Promise<void> {
  const F = PROSODY_FIXTURE;
  if (p.domain !== F.domain) throw new Error(`populateProsody needs domain ${F.domain}, not ${p.domain}`);
  const password = (name: string) => {
    const u = p.users.find((x) => x.name === name);
    if (!u) throw new Error(`populateProsody needs user ${name} registered`);
    return u.password;
  };
  const login = async (name: string): Promise<TestClient> => {
    const c = await connectClient({ port: p.port, username: name, password: password(name), resource: "fixture" });
    try {
      // Roster first, then available: only such resources get roster pushes and subscription requests.
      await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
      await c.xmpp.send(xml("presence"));
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  };
  const bare = (jid: string | undefined) => (jid ?? "").split("/")[0];
  const presenceFrom = (c: TestClient, type: string, from: string) =>
    c.next((el) => el.is("presence") && el.attrs.type === type && bare(el.attrs.from) === from);

  // Logged in together: xmpp.js derives the SCRAM key with 10,000 async
  // WebCrypto HMACs, about a second per login.
  const logins = await Promise.allSettled(["alice", "bob", "carol"].map(login));
  const clients = logins.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = logins.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const [alice, bob, carol] = clients as [TestClient, TestClient, TestClient];
    const aliceJid = `alice@${F.domain}`;
    const bobJid = `bob@${F.domain}`;
    const carolJid = `carol@${F.domain}`;

    // alice names bob before asking; the subscription keeps the name and group.
    const item = F.roster.alice[0];
    await alice.xmpp.iqCaller.set(
      xml("query", { xmlns: "jabber:iq:roster" }, xml("item", { jid: item.jid, name: item.name }, ...item.groups.map((g) => xml("group", {}, g)))),
    );
    await alice.xmpp.send(xml("presence", { to: bobJid, type: "subscribe" }));
    await presenceFrom(bob, "subscribe", aliceJid);
    await bob.xmpp.send(xml("presence", { to: aliceJid, type: "subscribed" }));
    await bob.xmpp.send(xml("presence", { to: aliceJid, type: "subscribe" }));
    await presenceFrom(alice, "subscribe", bobJid);
    await alice.xmpp.send(xml("presence", { to: bobJid, type: "subscribed" }));
    await rosterSubscription(alice, bobJid, "both");
    await rosterSubscription(bob, aliceJid, "both");

    // carol asks; alice sees the request and leaves it unanswered.
    await carol.xmpp.send(xml("presence", { to: aliceJid, type: "subscribe" }));
    await presenceFrom(alice, "subscribe", carolJid);

    await alice.xmpp.iqCaller.set(
      xml("vCard", { xmlns: "vcard-temp" }, xml("FN", {}, F.vcard.fn), xml("NICKNAME", {}, F.vcard.nickname)),
    );

    // jabber:iq:private takes one element per request.
    const bm = F.private.bookmark;
    await alice.xmpp.iqCaller.set(
      xml(
        "query",
        { xmlns: "jabber:iq:private" },
        xml("storage", { xmlns: "storage:bookmarks" }, xml("conference", { jid: bm.jid, name: bm.name, autojoin: bm.autojoin }, xml("nick", {}, bm.nick))),
      ),
    );
    await alice.xmpp.iqCaller.set(
      xml("query", { xmlns: "jabber:iq:private" }, xml("prefs", { xmlns: F.private.prefs.xmlns }, xml("theme", {}, F.private.prefs.theme))),
    );

    const nick = F.pep.nick;
    await alice.xmpp.iqCaller.set(
      xml(
        "pubsub",
        { xmlns: "http://jabber.org/protocol/pubsub" },
        xml("publish", { node: nick.node }, xml("item", { id: nick.id }, xml("nick", { xmlns: nick.node }, nick.nick))),
      ),
    );
    const st = F.pep.status;
    for (const it of st.items) {
      await alice.xmpp.iqCaller.set(
        xml(
          "pubsub",
          { xmlns: "http://jabber.org/protocol/pubsub" },
          xml("publish", { node: st.node }, xml("item", { id: it.id }, xml("status", { xmlns: st.node }, xml("text", {}, it.text)))),
          xml(
            "publish-options",
            {},
            xml(
              "x",
              { xmlns: "jabber:x:data", type: "submit" },
              xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, "http://jabber.org/protocol/pubsub#publish-options")),
              xml("field", { var: "pubsub#access_model" }, xml("value", {}, st.accessModel)),
              xml("field", { var: "pubsub#max_items" }, xml("value", {}, st.maxItems)),
            ),
          ),
        ),
      );
    }
  } finally {
    for (const c of clients) await c.stop();
  }
}

/** Polls the roster until `jid` has `subscription` (the last presence may still be in flight). */
async function rosterSubscription(c: TestClient, jid: string, subscription: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const q = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    const item = q.getChildren("item").find((i) => i.attrs.jid === jid);
    if (item?.attrs.subscription === subscription) return;
    if (Date.now() > deadline) throw new Error(`${c.jid}: roster item ${jid} is ${item?.toString() ?? "absent"}, wanted subscription ${subscription}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A Lua string literal (config values: paths, the domain). */
function luaString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r")}"`;
}
