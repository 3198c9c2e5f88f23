// Moving users from Prosody to xfarm and back, with both servers' own tools:
// Debian's Prosody 0.12 is filled by xmpp.js clients and exported by its
// prosody-migrator as XEP-0227; `xfarm import` brings that into a farm on
// MariaDB, where the same clients log in with their old passwords and find
// their data; `xfarm export --per-user` goes back into a fresh Prosody.
// Under CI=true a missing Prosody fails.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse, type Element } from "ltx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { login } from "../sim/raw-session.js";
import { Farm } from "./harness/farm.js";
import { MariaDb } from "../sim/mariadb.js";
import { populateProsody, Prosody, PROSODY_FIXTURE as F } from "./harness/prosody.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const PIE = "urn:xmpp:pie:0";

/** The first child named `name` in namespace `xmlns` (declared on it or inherited). */
function child(el: Element, name: string, xmlns: string): Element {
  const found = el.getChildren(name).find((c) => c.getNS() === xmlns);
  if (!found) throw new Error(`no <${name} xmlns='${xmlns}'> in ${el.toString()}`);
  return found;
}

function formValue(form: Element, v: string): string | undefined {
  return form.getChildren("field").find((f) => f.attrs.var === v)?.getChildText("value") ?? undefined;
}

describe("moving users from Prosody to xfarm and back (XEP-0227)", () => {
  let prosody: Prosody | undefined;
  let files: string[] = [];
  let db: MariaDb | undefined;
  let farm: Farm | undefined;
  const clients: TestClient[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-migration-"));

  beforeAll(async () => {
    if (!Prosody.available()) throw new Error("Prosody is not installed: apt-get install prosody (/usr/bin/prosody, /usr/bin/prosody-migrator)");
    // Prosody's side and the farm's are apart until the import: they start together. Both are
    // settled before a failure is thrown, so that afterAll stops all that started.
    const started = await Promise.allSettled([
      (async () => {
        prosody = await Prosody.start({ domain: F.domain, users: F.users });
        await populateProsody(prosody);
        files = await prosody.exportXep0227();
      })(),
      (async () => {
        db = await MariaDb.start();
        farm = await Farm.create({ c2sCount: 1, db: await db.createDatabase("xfarm_migration") });
        await farm.start();
      })(),
    ]);
    for (const r of started) if (r.status === "rejected") throw r.reason;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await prosody?.stop();
    await farm?.stop();
    farm?.cleanup();
    await db?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const connect = async (port: number, name: string, password: string): Promise<TestClient> => {
    const c = await connectClient({ port, username: name, password, resource: "r" });
    clients.push(c);
    return c;
  };
  const password = (name: string) => F.users.find((u) => u.name === name)!.password;

  const userEl = (name: string): Element => {
    const file = files.find((f) => path.basename(f) === `${name}@${F.domain}.xml`);
    if (!file) throw new Error(`no export for ${name}: ${files.join(", ")}`);
    const root = parse(fs.readFileSync(file, "utf8"));
    expect(root.is("server-data", PIE)).toBe(true);
    const host = child(root, "host", PIE);
    expect(host.attrs.jid).toBe(F.domain);
    const user = child(host, "user", PIE);
    expect(user.attrs.name).toBe(name);
    return user;
  };

  it("writes one file per user", () => {
    expect(files.map((f) => path.basename(f))).toEqual(F.users.map((u) => `${u.name}@${F.domain}.xml`).sort());
  });

  it("exports SCRAM-SHA-1 credentials, not a password", () => {
    for (const u of F.users) {
      const user = userEl(u.name);
      expect(user.attrs.password).toBeUndefined();
      const scram = child(user, "scram-credentials", `${PIE}#scram`);
      expect(scram.attrs.mechanism).toBe("SCRAM-SHA-1");
      expect(Number(scram.getChildText("iter-count"))).toBeGreaterThan(0);
      for (const k of ["server-key", "stored-key"]) expect(Buffer.from(scram.getChildText(k) ?? "", "base64")).toHaveLength(20);
      expect(scram.getChildText("salt")).toBeTruthy();
    }
  });

  it("exports rosters with names, groups, subscriptions and asks", () => {
    for (const [name, items] of Object.entries(F.roster)) {
      const roster = child(userEl(name), "query", "jabber:iq:roster");
      const got = roster.getChildren("item").map((i) => ({
        jid: i.attrs.jid,
        subscription: i.attrs.subscription,
        ...(i.attrs.name ? { name: i.attrs.name } : {}),
        ...(i.attrs.ask ? { ask: i.attrs.ask } : {}),
        ...(i.getChildren("group").length ? { groups: i.getChildren("group").map((g) => g.getText()) } : {}),
      }));
      expect(got, name).toEqual(items);
    }
  });

  it("exports alice's unanswered request from carol as a subscribe presence", () => {
    const user = userEl("alice");
    // Prosody writes <presence/> with no xmlns of its own, so it inherits
    // urn:xmpp:pie:0 from <user/>, where jabber:client was meant.
    const pending = user.getChildren("presence").filter((p) => p.attrs.type === "subscribe");
    expect(pending.map((p) => p.attrs.from)).toEqual([...F.pendingIn.alice]);
  });

  it("exports alice's vCard", () => {
    const vcard = child(userEl("alice"), "vCard", "vcard-temp");
    expect(vcard.getChildText("FN")).toBe(F.vcard.fn);
    expect(vcard.getChildText("NICKNAME")).toBe(F.vcard.nickname);
  });

  it("exports both private XML elements", () => {
    const priv = child(userEl("alice"), "query", "jabber:iq:private");
    const conf = child(child(priv, "storage", "storage:bookmarks"), "conference", "storage:bookmarks");
    const bm = F.private.bookmark;
    expect(conf.attrs).toMatchObject({ jid: bm.jid, name: bm.name, autojoin: bm.autojoin });
    expect(conf.getChildText("nick")).toBe(bm.nick);
    expect(child(priv, "prefs", F.private.prefs.xmlns).getChildText("theme")).toBe(F.private.prefs.theme);
  });

  it("exports alice's PEP nodes: owner configuration and items", () => {
    const user = userEl("alice");
    const owner = child(user, "pubsub", "http://jabber.org/protocol/pubsub#owner");
    const config = (node: string) => {
      const c = owner.getChildren("configure").find((e) => e.attrs.node === node);
      if (!c) throw new Error(`no configure for ${node}: ${owner.toString()}`);
      return child(c, "x", "jabber:x:data");
    };
    // Prosody keeps only the options a node was given; the nick node has
    // none, so its form is all empty fields, meaning mod_pep's defaults
    // (access_model presence, max_items 1, persist_items true).
    expect(formValue(config(F.pep.nick.node), "pubsub#access_model")).toBeUndefined();
    expect(formValue(config(F.pep.nick.node), "pubsub#max_items")).toBeUndefined();
    expect(formValue(config(F.pep.status.node), "pubsub#access_model")).toBe(F.pep.status.accessModel);
    expect(formValue(config(F.pep.status.node), "pubsub#max_items")).toBe(F.pep.status.maxItems);

    const pubsub = child(user, "pubsub", "http://jabber.org/protocol/pubsub");
    const items = (node: string) => {
      const i = pubsub.getChildren("items").find((e) => e.attrs.node === node);
      if (!i) throw new Error(`no items for ${node}: ${pubsub.toString()}`);
      return i.getChildren("item");
    };
    const [nick] = items(F.pep.nick.node);
    expect(nick?.attrs.id).toBe(F.pep.nick.id);
    expect(child(nick!, "nick", F.pep.nick.node).getText()).toBe(F.pep.nick.nick);
    const status = items(F.pep.status.node).map((i) => ({ id: i.attrs.id, text: child(i, "status", F.pep.status.node).getChildText("text") }));
    expect(status).toEqual(F.pep.status.items);
  });

  it("xfarm import brings every user over: old passwords log in, and roster, requests, vCard, private XML and PEP are there", async () => {
    const r = await farm!.cli("import", path.dirname(files[0]!));
    expect(r.stderr).toContain("imported 3 user(s), skipped 0 existing, refused 0");
    expect(r.code).toBe(0);

    // xmpp.js speaks SCRAM-SHA-1: Prosody's keys, taken over as they were.
    const alice = await connect(farm!.c2sPorts[0]!.port, "alice", password("alice"));
    const roster = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    expect(roster.getChildren("item").map((i) => ({ ...i.attrs, groups: i.getChildren("group").map((g) => g.getText()) }))).toEqual([
      { jid: "bob@localhost", name: "Bobby", subscription: "both", groups: ["Friends"] },
    ]);
    // carol's request waited in Prosody; it reaches alice at her initial presence here.
    await alice.xmpp.send(xml("presence"));
    expect((await alice.next((s) => s.is("presence") && s.attrs.type === "subscribe")).attrs.from).toBe("carol@localhost");

    const vcard = await alice.xmpp.iqCaller.get(xml("vCard", { xmlns: "vcard-temp" }));
    expect(vcard.getChildText("FN")).toBe(F.vcard.fn);
    const bookmarks = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:private" }, xml("storage", { xmlns: "storage:bookmarks" })));
    expect(bookmarks.getChild("storage")?.getChild("conference")?.attrs.jid).toBe(F.private.bookmark.jid);
    const prefs = await alice.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:private" }, xml("prefs", { xmlns: F.private.prefs.xmlns })));
    expect(prefs.getChild("prefs")?.getChildText("theme")).toBe(F.private.prefs.theme);

    // bob (a contact) reads alice's PEP, as the node's access model allows.
    const bob = await connect(farm!.c2sPorts[0]!.port, "bob", password("bob"));
    const pubsub = "http://jabber.org/protocol/pubsub";
    const items = async (node: string) =>
      (await bob.xmpp.iqCaller.get(xml("pubsub", { xmlns: pubsub }, xml("items", { node })), "alice@localhost"))
        .getChild("items")!
        .getChildren("item");
    const [nick] = await items(F.pep.nick.node);
    expect(nick?.getChild("nick")?.getText()).toBe(F.pep.nick.nick);
    expect((await items(F.pep.status.node)).map((i) => i.attrs.id)).toEqual(F.pep.status.items.map((i) => i.id));
  }, 60_000);

  it("gives an imported account SCRAM-SHA-256 keys at its first PLAIN login", async () => {
    const target = { host: "127.0.0.1", port: farm!.c2sPorts[0]!.port, domain: "localhost", security: "starttls" as const, ca: fs.readFileSync(process.env.XFARM_TEST_CERT!) };
    // Prosody exported SHA-1 keys only: SCRAM-SHA-256 cannot work yet.
    await expect(login({ ...target, mechanism: "SCRAM-SHA-256" }, "carol", password("carol"), 10_000)).rejects.toThrow(/not-authorized/);
    (await login({ ...target, mechanism: "PLAIN" }, "carol", password("carol"), 10_000)).close();
    await farm!.until("carol's SCRAM-SHA-256 keys", () => farm!.readStore((s) => s.getCredentials("carol@localhost")), (c) => c?.["SHA-256"] !== undefined);
    (await login({ ...target, mechanism: "SCRAM-SHA-256" }, "carol", password("carol"), 10_000)).close();
  }, 30_000);

  it("xfarm export --per-user goes back into a fresh Prosody, with what changed on xfarm", async () => {
    const alice = clients[0]!;
    await alice.xmpp.iqCaller.set(xml("vCard", { xmlns: "vcard-temp" }, xml("FN", {}, "Alice on xfarm")));
    const dir = path.join(tmp, "back");
    const r = await farm!.cli("export", "--per-user", dir);
    expect(r.stderr).toContain(`exported 3 user(s) to ${dir}/`);
    expect(fs.readdirSync(dir).sort()).toEqual(["alice@localhost.xml", "bob@localhost.xml", "carol@localhost.xml"]);

    const back = await Prosody.start({ domain: F.domain, users: [] });
    try {
      await back.importXep0227(dir);
      const c = await connectClient({ port: back.port, username: "alice", password: password("alice"), resource: "p" });
      try {
        const roster = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
        expect(roster.getChildren("item").map((i) => [i.attrs.jid, i.attrs.name, i.attrs.subscription])).toEqual([["bob@localhost", "Bobby", "both"]]);
        expect((await c.xmpp.iqCaller.get(xml("vCard", { xmlns: "vcard-temp" }))).getChildText("FN")).toBe("Alice on xfarm");
        const prefs = await c.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:private" }, xml("prefs", { xmlns: F.private.prefs.xmlns })));
        expect(prefs.getChild("prefs")?.getChildText("theme")).toBe(F.private.prefs.theme);
      } finally {
        await c.stop();
      }
    } finally {
      await back.stop();
    }
  }, 60_000);
});
