// XEP-0227 export and import through the real stores: a round trip SQLite →
// MariaDB → SQLite that must give back the same file, and the shapes other
// servers write (XInclude, plain passwords, things xfarm does not keep).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deriveCredentials, verifyPassword } from "../lib/sasl/scram-credentials.js";
import { DEFAULT_LIMITS, overLimits } from "../sm/limits.js";
import { openStore } from "../xdb-sql/open-store.js";
import { exportPie } from "../xdb-sql/pie-export.js";
import { importUser, type ImportResult } from "../xdb-sql/pie-import.js";
import { readPie } from "../xdb-sql/pie-reader.js";
import type { Store } from "../xdb-sql/store.js";
import { MariaDb } from "../sim/mariadb.js";
import { rosterItem } from "./harness/roster-item.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-pie-"));
let mariadb: MariaDb;
let dbs = 0;
const sqliteUrl = () => `sqlite:${path.join(tmp, `db${++dbs}.sqlite`)}`;

beforeAll(async () => {
  mariadb = await MariaDb.start();
}, 60_000);

afterAll(async () => {
  await mariadb?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function exportToString(store: Store, domains: string[] = []): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  await exportPie(store, out, { domains });
  out.end();
  return Buffer.concat(chunks).toString("utf8");
}

async function importFile(store: Store, file: string, replace = false): Promise<ImportResult[]> {
  const results: ImportResult[] = [];
  for await (const u of readPie(file)) results.push(await importUser(store, u, { replace, iterations: 64 }));
  return results;
}

/** An account with something in every part XEP-0227 carries. */
async function fill(s: Store): Promise<void> {
  const alice = "alice@example.com";
  await s.createAccount(alice, await deriveCredentials("alice pw", 64));
  await s.createAccount("old@example.com", { "SHA-1": (await deriveCredentials("old pw", 64))["SHA-1"] });
  await s.createAccount("zed@example.org", await deriveCredentials("zed pw", 64));
  await s.putRosterItem(alice, rosterItem("bob@example.com", { name: "Bob & 🐝", subscription: "both", groups: ["Friends", "Équipe"] }));
  await s.putRosterItem(alice, rosterItem("dave@example.net", { subscription: "from", askOut: true, pendingIn: false }));
  await s.putRosterItem(alice, rosterItem("carol@example.com", { pendingIn: true, visible: false }));
  await s.putRosterItem(alice, rosterItem("erin@example.com", { subscription: "to", pendingIn: true }));
  await s.storeOffline(alice, "<message from='bob@example.com/phone' to='alice@example.com' type='chat' id='m1'><body>first &lt;1&gt;</body></message>", new Date("2026-01-02T03:04:05.678Z"));
  await s.storeOffline(alice, "<message xmlns='jabber:client' from='bob@example.com/phone' to='alice@example.com' id='m2'><body>second</body></message>", new Date("2026-01-02T03:04:06.000Z"), "c2s-1/3fa9c1a/17/0");
  await s.setVcard(alice, "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME></vCard>");
  await s.setPrivate(alice, { namespace: "storage:bookmarks", name: "storage" }, "<storage xmlns='storage:bookmarks'><conference jid='room@conference.example.com' autojoin='true'/></storage>");
  await s.setPrivate(alice, { namespace: "urn:example:prefs", name: "prefs" }, "<prefs xmlns='urn:example:prefs'><theme>dark</theme></prefs>");
  await s.putPepNode(alice, { node: "http://jabber.org/protocol/nick", config: { "pubsub#access_model": "presence", "pubsub#max_items": "1" } });
  await s.publishPepItem(alice, "http://jabber.org/protocol/nick", { id: "current", xml: "<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>", published: new Date() }, 1);
  await s.putPepNode(alice, { node: "urn:example:status", config: { "pubsub#access_model": "open", "pubsub#max_items": "10", "pubsub#roster_groups_allowed": "Friends\nFamily" } });
  for (const id of ["s1", "s2"]) {
    await s.publishPepItem(alice, "urn:example:status", { id, xml: `<status xmlns='urn:example:status'>${id}</status>`, published: new Date() }, 10);
  }
  await s.putPepNode(alice, { node: "urn:example:empty", config: {} });
  // What modules store: key-value entries, the MAM archive, and an archive of another module.
  await s.putKv(alice, "blocking", "mallory@example.net", "");
  await s.putKv(alice, "mam-prefs", "default", JSON.stringify({ default: "roster", always: ["bob@example.com"] }));
  await s.putKv(alice, "notes", "xml", "<note xmlns='urn:example'>a &amp; b</note>");
  await s.appendArchive(alice, "mam", [
    { id: "m-1", stamp: new Date("2026-01-03T00:00:00.001Z"), with: "bob@example.com", xml: "<message from='bob@example.com/phone' to='alice@example.com/pc' type='chat' id='x1'><body>hi &lt;3</body></message>" },
    { stamp: new Date("2026-01-03T00:00:01Z"), with: "bob@example.com", xml: "<message from='alice@example.com/pc' to='bob@example.com' type='chat' id='x2'><body>hello</body></message>" },
    // Not a message: kept in xfarm's own element.
    { id: "m-3", stamp: new Date("2026-01-03T00:00:02Z"), with: "room@conference.example.com", xml: "<presence from='alice@example.com'/>" },
  ]);
  await s.appendArchive(alice, "audit", [{ id: "a1", stamp: new Date(0), with: "example.com", xml: "<login xmlns='urn:example:audit'/>" }]);
}

describe("XEP-0227 export and import", () => {
  it("round-trips every part of an account from SQLite through MariaDB and back, unchanged", async () => {
    const first = await openStore(sqliteUrl());
    await fill(first);
    const exported = await exportToString(first);
    const file = path.join(tmp, "first.xml");
    fs.writeFileSync(file, exported);

    const maria = await openStore(await mariadb.createDatabase("xfarm_pie_round_trip"));
    expect((await importFile(maria, file)).map((r) => [r.jid, r.status])).toEqual([
      ["alice@example.com", "imported"],
      ["old@example.com", "imported"],
      ["zed@example.org", "imported"],
    ]);
    const again = await exportToString(maria);
    expect(again).toBe(exported);

    // What the file carries is what a client will see.
    expect(await maria.getRoster("alice@example.com")).toEqual(await first.getRoster("alice@example.com"));
    expect(await maria.loadOffline("alice@example.com")).toEqual(
      (await first.loadOffline("alice@example.com")).map((m) => ({ ...m, id: expect.any(Number), xml: expect.stringContaining(m.xml.includes("first") ? "first &lt;1&gt;" : "second") })),
    );
    const oldKeys = (await maria.getCredentials("old@example.com"))!;
    expect(Object.keys(oldKeys)).toEqual(["SHA-1"]);
    expect(await verifyPassword("old pw", oldKeys["SHA-1"]!, "SHA-1")).toBe(true);
    expect((await maria.getPepItems("alice@example.com", "urn:example:status")).map((i) => i.id)).toEqual(["s1", "s2"]);
    expect((await maria.getPepNode("alice@example.com", "urn:example:status"))!.config["pubsub#roster_groups_allowed"]).toBe("Friends\nFamily");
    expect(await maria.listKv("alice@example.com")).toEqual(await first.listKv("alice@example.com"));
    for (const archive of ["mam", "audit"]) {
      const items = async (st: Store) => (await st.queryArchive("alice@example.com", archive, { limit: 10 }))!.items;
      expect((await items(maria)).map((i) => ({ ...i, xml: expect.any(String) }))).toEqual((await items(first)).map((i) => ({ ...i, xml: expect.any(String) })));
    }
    expect(await maria.listArchives("alice@example.com")).toEqual(["audit", "mam"]);

    // The export names each part the way XEP-0227 does.
    expect(exported).toContain("<scram-credentials xmlns=\"urn:xmpp:pie:0#scram\" mechanism=\"SCRAM-SHA-256\">");
    expect(exported).toContain("<presence xmlns=\"jabber:client\" type=\"subscribe\" from=\"carol@example.com\" to=\"alice@example.com\"/>");
    expect(exported).toContain("<delay xmlns=\"urn:xmpp:delay\" from=\"example.com\" stamp=\"2026-01-02T03:04:05.678Z\"/>");
    expect(exported).not.toMatch(/password=/);
    expect(exported).toContain(
      '<archive xmlns="urn:xmpp:pie:0#mam"><result xmlns="urn:xmpp:mam:2" id="m-1"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="2026-01-03T00:00:00.001Z"/><message xmlns="jabber:client" from="bob@example.com/phone"',
    );
    expect(exported).toContain('<module-data xmlns="urn:xfarm:module-data:0"><kv store="blocking"><entry key="mallory@example.net"></entry></kv>');
    expect(exported).toContain('<archive name="mam"><item id="m-3" stamp="2026-01-03T00:00:02.000Z" with="room@conference.example.com"><presence from="alice@example.com"/></item></archive>');

    // Only the domains asked for.
    expect(await exportToString(first, ["example.org"])).toMatch(/^(?![\s\S]*alice)[\s\S]*<user name="zed">/);

    // A second import leaves existing accounts alone unless asked to replace them.
    expect((await importFile(maria, file)).map((r) => r.status)).toEqual(["exists", "exists", "exists"]);
    await maria.setVcard("alice@example.com", null);
    expect((await importFile(maria, file, true)).map((r) => r.status)).toEqual(["imported", "imported", "imported"]);
    expect(await maria.getVcard("alice@example.com")).toContain("Alice Liddell");
    expect(await exportToString(maria)).toBe(exported);

    await Promise.all([first.close(), maria.close()]);
  }, 60_000);

  it("reads what other servers write: XInclude, a root <host/>, plain passwords, prefixes, unsupported parts", async () => {
    const dir = path.join(tmp, "ejabberd");
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, "main.xml"),
      `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>
  <xi:include href='example.com.xml'/>
</server-data>`,
    );
    fs.writeFileSync(
      path.join(dir, "example.com.xml"),
      `<?xml version='1.0' encoding='UTF-8'?>
<host xmlns='urn:xmpp:pie:0' xmlns:v='vcard-temp' jid='example.com'>
  <user name='plain' password='pläin pw'>
    <query xmlns='jabber:iq:roster'><item jid='Bob@Example.com' subscription='both'><group>A</group><group>A</group></item><item jid='bad@@x' subscription='both'/></query>
    <v:vCard><v:FN>Plain</v:FN></v:vCard>
    <offline-messages><message xmlns='jabber:client' from='bob@example.com/x' to='plain@example.com'><body>hi</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2025-12-31T23:59:59Z'/><delay xmlns='urn:xmpp:delay' from='elsewhere.example' stamp='2025-12-31T23:00:00Z'/></message></offline-messages>
    <query xmlns='jabber:iq:privacy'><list name='x'/></query>
  </user>
  <user name='nokeys'/>
</host>`,
    );
    const s = await openStore(sqliteUrl());
    const results = await importFile(s, path.join(dir, "main.xml"));
    expect(results).toEqual([
      { jid: "plain@example.com", status: "imported", skipped: ["query (jabber:iq:privacy)"] },
      { jid: "nokeys@example.com", status: "refused", reason: "no password and no SCRAM-SHA-1 or SCRAM-SHA-256 keys" },
    ]);
    const creds = (await s.getCredentials("plain@example.com"))!;
    expect(await verifyPassword("pläin pw", creds["SHA-256"]!, "SHA-256")).toBe(true);
    expect(await verifyPassword("pläin pw", creds["SHA-1"]!, "SHA-1")).toBe(true);
    expect(await s.getRoster("plain@example.com")).toEqual([rosterItem("bob@example.com", { subscription: "both", groups: ["A"] })]);
    expect(await s.getVcard("plain@example.com")).toBe('<vCard xmlns="vcard-temp"><FN>Plain</FN></vCard>');
    const [m] = await s.loadOffline("plain@example.com");
    // The storing server's delay becomes the storage time; a remote entity's stays in the message.
    expect(m!.stored.toISOString()).toBe("2025-12-31T23:59:59.000Z");
    expect(m!.xml).not.toContain("stamp=\"2025-12-31T23:59:59Z\"");
    expect(m!.xml).toContain("from=\"elsewhere.example\"");
    await s.close();
  });

  it("imports a MAM archive as Prosody writes it, into the archive mod-mam declares", async () => {
    const file = path.join(tmp, "prosody-mam.xml");
    const result = (id: string, stamp: string, message: string) =>
      `<result xmlns='urn:xmpp:mam:2' id='${id}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>${message}</forwarded></result>`;
    fs.writeFileSync(
      file,
      `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='juliet' password='pw'>
  <archive xmlns='urn:xmpp:pie:0#mam'>
    ${result("5f1c", "2021-06-01T10:00:00Z", "<message xmlns='jabber:client' from='romeo@example.net/a' to='juliet@example.com' type='chat'><body>Art thou?</body></message>")}
    ${result("5f1d", "2021-06-01T10:00:05Z", "<message xmlns='jabber:client' from='juliet@example.com/b' to='romeo@example.net' type='chat'><body>I am.</body></message>")}
    ${result("5f1e", "2021-06-01T10:00:06Z", "<iq xmlns='jabber:client'/>")}
  </archive>
</user></host></server-data>`,
    );
    const s = await openStore(sqliteUrl());
    expect(await importFile(s, file)).toEqual([
      { jid: "juliet@example.com", status: "imported", skipped: ["archive result 5f1e (urn:xmpp:pie:0#mam) without a message, stamp or other party"] },
    ]);
    const page = (await s.queryArchive("juliet@example.com", "mam", { limit: 10, with: "romeo@example.net" }))!;
    expect(page.items.map((i) => [i.id, i.stamp.toISOString(), i.with])).toEqual([
      ["5f1c", "2021-06-01T10:00:00.000Z", "romeo@example.net"],
      ["5f1d", "2021-06-01T10:00:05.000Z", "romeo@example.net"],
    ]);
    expect(page.items[0]!.xml).toBe('<message xmlns="jabber:client" from="romeo@example.net/a" to="juliet@example.com" type="chat"><body>Art thou?</body></message>');
    await s.close();
  });

  it("imports an account over the sm's limits whole, and names each limit it is over", async () => {
    const file = path.join(tmp, "big.xml");
    const contacts = Array.from({ length: 4 }, (_, i) => `<item jid='c${i}@example.com' subscription='both'/>`).join("");
    const items = Array.from({ length: 3 }, (_, i) => `<item id='i${i}'><p xmlns='urn:example:p'>${"x".repeat(200)}</p></item>`).join("");
    fs.writeFileSync(
      file,
      `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='big' password='pw'>
  <query xmlns='jabber:iq:roster'>${contacts}</query>
  <query xmlns='jabber:iq:private'><a xmlns='urn:example:a'>${"y".repeat(300)}</a></query>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='gallery'>${items}</items><items node='other'><item id='o'><p xmlns='urn:example:p'/></item></items></pubsub>
</user></host></server-data>`,
    );
    const s = await openStore(sqliteUrl());
    expect(await importFile(s, file)).toEqual([{ jid: "big@example.com", status: "imported", skipped: [] }]);
    expect(await s.countRoster("big@example.com")).toBe(4);
    const limits = { ...DEFAULT_LIMITS, rosterItems: 3, privateBytes: 200, privateItemBytes: 100, pepNodes: 1, pepItems: 2, pepItemBytes: 100 };
    expect(await overLimits(s, "big@example.com", limits)).toEqual([
      "4 roster items (sm.max_roster_items 3)",
      "329 bytes of private XML (sm.max_private_size 200)",
      "private element {urn:example:a}a of 329 bytes (sm.max_private_item_size 100)",
      "2 PEP nodes (sm.max_pep_nodes 1)",
      "3 items in PEP node gallery (sm.max_pep_items 2)",
      "3 items over 100 bytes in PEP node gallery (sm.max_pep_item_size)",
    ]);
    expect(await overLimits(s, "big@example.com", DEFAULT_LIMITS)).toEqual([]);
    await s.close();
  });

  it("names the file and line of a document that is not XEP-0227", async () => {
    const file = path.join(tmp, "wrong.xml");
    fs.writeFileSync(file, "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='example.com'>\n<bogus/>\n</host></server-data>");
    const s = await openStore(sqliteUrl());
    await expect(importFile(s, file)).rejects.toThrow(`${file}:3: unexpected <bogus/>`);
    fs.writeFileSync(file, "<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='a'>");
    await expect(importFile(s, file)).rejects.toThrow(/wrong\.xml/);
    await s.close();
  });
});
