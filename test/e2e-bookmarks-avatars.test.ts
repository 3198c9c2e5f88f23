// XEP-0084 User Avatar and XEP-0402 PEP Native Bookmarks end to end, between
// xmpp.js and Debian's python3-slixmpp (its xep_0084 plugin for avatars; its
// xep_0060 with XEP-0402's publish-options for bookmarks, 1.8.3 having no
// xep_0402 plugin) on two front ends: one publishes, the other is notified
// and fetches, both ways.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import type { Element } from "ltx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../xdb-sql/open-store.js";
import { Farm } from "./harness/farm.js";
import { EVENT, PUBSUB, answerCaps, capsOf } from "./harness/pep.js";
import { rosterItem } from "./harness/roster-item.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

// Debian's interpreter, where python3-slixmpp installs (not a pyenv one on PATH).
const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./interop/slix_pep.py", import.meta.url));
const BOOKMARKS = "urn:xmpp:bookmarks:1";
const AVATAR_DATA = "urn:xmpp:avatar:data";
const AVATAR_METADATA = "urn:xmpp:avatar:metadata";
const DELAY = "urn:xmpp:delay";

interface SlixEvent {
  event: string;
  [k: string]: unknown;
}

/** A slixmpp client (test/interop/slix_pep.py): commands on its stdin, events read from its stdout. */
class Slix {
  private readonly events: SlixEvent[] = [];
  private waiters: { test: (e: SlixEvent) => boolean; resolve: (e: SlixEvent) => void }[] = [];
  private stderr = "";

  private constructor(readonly py: ChildProcessWithoutNullStreams) {
    py.stderr.on("data", (d) => (this.stderr += d));
    readline.createInterface({ input: py.stdout }).on("line", (line) => {
      const e = JSON.parse(line) as SlixEvent;
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.test(e) ? (w.resolve(e), false) : true));
    });
  }

  static async login(port: number, jid: string): Promise<Slix> {
    const py = spawn(PYTHON, [SCRIPT, "--port", String(port), "--jid", jid, "--password", "pw", "--ca", process.env.XFARM_TEST_CERT!]);
    const slix = new Slix(py);
    await slix.next((e) => e.event === "session_start");
    return slix;
  }

  /** The first event (seen or to come) that passes `test`, taken. */
  next(test: (e: SlixEvent) => boolean): Promise<SlixEvent> {
    const seen = this.events.find(test);
    if (seen) {
      this.events.splice(this.events.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`slixmpp event not seen; events: ${JSON.stringify(this.events)} stderr: ${this.stderr}`)), 15_000);
      this.waiters.push({ test, resolve: (e) => (clearTimeout(timer), this.events.splice(this.events.indexOf(e), 1), resolve(e)) });
    });
  }

  /** Runs a command; resolves with its result, rejects with the error condition it got. */
  async run(command: Record<string, string>): Promise<SlixEvent> {
    this.py.stdin.write(`${JSON.stringify(command)}\n`);
    const end = await this.next((e) => (e.event === "done" || e.event === "failed") && e.cmd === command.cmd);
    if (end.event === "failed") throw new Error(`${command.cmd}: ${String(end.condition)}`);
    return end;
  }

  async bye(): Promise<void> {
    const exited = new Promise((resolve) => this.py.once("exit", resolve));
    this.py.stdin.write(`${JSON.stringify({ cmd: "bye" })}\n`);
    await exited;
  }
}

const sha1 = (data: Buffer): string => createHash("sha1").update(data).digest("hex");

/** A PEP event from `from` on `node`, with an item or a retraction of `id`. */
const isEvent = (from: string, node: string, id: string, child = "item") => (s: Element) =>
  s.is("message") && s.attrs.from === from && s.getChild("event", EVENT)?.getChild("items", EVENT)?.attrs.node === node && s.getChild("event", EVENT)!.getChild("items")!.getChild(child)?.attrs.id === id;

describe("XEP-0084 avatars and XEP-0402 bookmarks between xmpp.js and slixmpp", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const slixes: Slix[] = [];

  const js = async (username: string, resource: string, features: string[]): Promise<TestClient> => {
    const c = await connectClient({ port: farm.c2sPorts[0]!.port, username, password: "pw", resource });
    clients.push(c);
    answerCaps(c, features);
    await c.xmpp.send(xml("presence", {}, capsOf(features)));
    return c;
  };
  const slix = async (jid: string): Promise<Slix> => {
    const s = await Slix.login(farm.c2sPorts[1]!.port, jid);
    slixes.push(s);
    return s;
  };

  beforeAll(async () => {
    const probe = spawnSync(PYTHON, ["-c", "import slixmpp"]);
    if (probe.status !== 0) throw new Error("python3-slixmpp is not installed: apt-get install python3-slixmpp (.ci/run does)");
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    for (const user of ["ava", "sli", "eve"]) await farm.addUser(`${user}@localhost`, "pw");
    const store = await openStore(`sqlite:${path.join(farm.dir, "data", "xfarm.db")}`);
    try {
      for (const [a, b] of [["ava", "sli"], ["sli", "ava"], ["ava", "eve"], ["eve", "ava"]]) {
        await store.putRosterItem(`${a}@localhost`, rosterItem(`${b}@localhost`, { subscription: "both" }));
      }
    } finally {
      await store.close();
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(slixes.map((s) => s.bye()));
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("an avatar published from xmpp.js reaches slixmpp's xep_0084, and one from slixmpp reaches xmpp.js", async () => {
    const ava = await js("ava", "web", []);
    // A 150 kB image: 200 kB of base64 in one item, under sm.max_pep_item_size.
    const image = randomBytes(150_000);
    const id = sha1(image);
    const publish = (node: string, payload: ReturnType<typeof xml>) =>
      ava.xmpp.iqCaller.set(xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node }, xml("item", { id }, payload))));
    await publish(AVATAR_DATA, xml("data", { xmlns: AVATAR_DATA }, image.toString("base64")));
    await publish(AVATAR_METADATA, xml("metadata", { xmlns: AVATAR_METADATA }, xml("info", { id, bytes: String(image.length), type: "image/png", width: "64", height: "64" })));

    // slixmpp's caps say metadata+notify: at its presence it gets the last metadata, stamped (XEP-0203), and fetches the data.
    const sli = await slix("sli@localhost/py");
    const note = await sli.next((e) => e.event === "avatar_metadata" && e.frm === "ava@localhost");
    expect(note).toMatchObject({ id, delayed: true });
    expect((await sli.run({ cmd: "fetch_avatar", jid: "ava@localhost", id })).sha1).toBe(id);

    // The other way: slixmpp publishes; xmpp.js, announcing metadata+notify, gets it and fetches the data by id.
    const theirs = randomBytes(60_000);
    const theirId = (await sli.run({ cmd: "publish_avatar", b64: theirs.toString("base64") })).id as string;
    expect(theirId).toBe(sha1(theirs));
    const watcher = await js("ava", "watcher", [`${AVATAR_METADATA}+notify`]);
    const last = await watcher.next(isEvent("sli@localhost", AVATAR_METADATA, theirId));
    expect(last.getChild("delay", DELAY)).toBeTruthy();
    const fetched = await watcher.xmpp.iqCaller.get(xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: AVATAR_DATA }, xml("item", { id: theirId }))), "sli@localhost");
    expect(sha1(Buffer.from(fetched.getChild("items")!.getChild("item")!.getChildText("data", AVATAR_DATA)!, "base64"))).toBe(theirId);

    // A new avatar, live this time.
    const next = randomBytes(1000);
    await sli.run({ cmd: "publish_avatar", b64: next.toString("base64") });
    const live = await watcher.next(isEvent("sli@localhost", AVATAR_METADATA, sha1(next)));
    expect(live.getChild("delay", DELAY)).toBeUndefined();
  });

  it("bookmarks published from xmpp.js and slixmpp reach the account's other client, and no contact", async () => {
    const web = await js("ava", "bookmarks", [`${BOOKMARKS}+notify`]);
    const py = await slix("ava@localhost/py");
    // The sm has the slixmpp resource online once its presence reached the other.
    await web.next((s) => s.is("presence") && s.attrs.from === "ava@localhost/py" && !s.attrs.type);

    const options = xml(
      "publish-options",
      {},
      xml(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        ...Object.entries({
          FORM_TYPE: `${PUBSUB}#publish-options`,
          "pubsub#persist_items": "true",
          "pubsub#max_items": "max",
          "pubsub#send_last_published_item": "never",
          "pubsub#access_model": "whitelist",
        }).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
      ),
    );
    const room = "xmpp@muc.localhost";
    const conference = xml("conference", { xmlns: BOOKMARKS, name: "XMPP", autojoin: "true" }, xml("nick", {}, "ava"));
    await web.xmpp.iqCaller.set(xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: BOOKMARKS }, xml("item", { id: room }, conference)), options));
    await py.next((e) => e.event === "bookmark" && e.id === room && e.frm === "ava@localhost");

    const other = "slix@muc.localhost";
    await py.run({ cmd: "publish_bookmark", room: other, name: "slixmpp" });
    await web.next(isEvent("ava@localhost", BOOKMARKS, other));
    expect((await py.run({ cmd: "get_bookmarks" })).ids).toEqual([room, other]);
    const all = await web.xmpp.iqCaller.get(xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: BOOKMARKS })), "ava@localhost");
    expect(all.getChild("items")!.getChildren("item").map((i: Element) => i.attrs.id)).toEqual([room, other]);

    await py.run({ cmd: "retract_bookmark", room });
    await web.next(isEvent("ava@localhost", BOOKMARKS, room, "retract"));

    // A contact may not read them (access model whitelist), from either library.
    const eve = await slix("eve@localhost/py");
    await expect(eve.run({ cmd: "get_bookmarks", jid: "ava@localhost" })).rejects.toThrow("forbidden");
  });
});
