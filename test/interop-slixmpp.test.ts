// Interop with Debian's python3-slixmpp, a second real client library,
// chatting across the two front ends with an xmpp.js client.
import { spawn, spawnSync } from "node:child_process";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, xml } from "./harness/xmppjs.js";

// Debian's interpreter, where python3-slixmpp installs (not a pyenv one on PATH).
const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./interop/slix_client.py", import.meta.url));

interface SlixEvent {
  event: string;
  [k: string]: string | string[];
}

/** Starts the scripted slixmpp client; `exited` resolves with its exit code, `slixEvent` with the first event (seen or to come) that passes `test`. */
function runSlix(args: string[]) {
  const py = spawn(PYTHON, [SCRIPT, ...args, "--ca", process.env.XFARM_TEST_CERT!]);
  const events: SlixEvent[] = [];
  let stderr = "";
  py.stderr.on("data", (d) => (stderr += d));
  const waiters: { test: (e: SlixEvent) => boolean; resolve: (e: SlixEvent) => void }[] = [];
  readline.createInterface({ input: py.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as SlixEvent;
    events.push(e);
    for (const w of waiters.splice(0)) (w.test(e) ? w.resolve(e) : waiters.push(w));
  });
  const slixEvent = (test: (e: SlixEvent) => boolean) =>
    new Promise<SlixEvent>((resolve, reject) => {
      const seen = events.find(test);
      if (seen) return resolve(seen);
      const timer = setTimeout(() => reject(new Error(`slixmpp event not seen; events: ${JSON.stringify(events)} stderr: ${stderr}`)), 15_000);
      waiters.push({ test, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  // Listened for from the start: the exit may come before the last line is read.
  const exited = new Promise<number | null>((resolve) => py.once("exit", (code) => resolve(code)));
  return { slixEvent, exited };
}

describe("slixmpp interop", () => {
  let farm: Farm;

  beforeAll(async () => {
    const probe = spawnSync(PYTHON, ["-c", "import slixmpp"]);
    if (probe.status !== 0) throw new Error("python3-slixmpp is not installed: apt-get install python3-slixmpp (.ci/run does)");
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    await farm.addUser("slix@localhost", "slix-pw");
    await farm.addUser("js@localhost", "js-pw");
  });

  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("logs in with SCRAM over STARTTLS, subscribes, and chats with an xmpp.js client", async () => {
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "web" });
    await js.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    await js.xmpp.send(xml("presence"));

    const { slixEvent, exited } = runSlix(["--port", String(farm.c2sPorts[1]!.port), "--jid", "slix@localhost/py", "--password", "slix-pw", "--peer", "js@localhost"]);

    const started = await slixEvent((e) => e.event === "session_start");
    expect(started.jid).toBe("slix@localhost/py");
    expect(started.mech).toMatch(/^SCRAM-SHA-(1|256)$/);
    // Where and how a client authenticated shows in the front end's log only.
    expect(farm.lines.find((l) => l.msg === "authenticated" && l.user === "slix@localhost")).toMatchObject({ proc: "c2s-2", secure: true });

    const hello = await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp");
    expect(hello.attrs.from).toBe("slix@localhost/py");

    // slixmpp auto-accepts and subscribes back; then both see each other online.
    await js.xmpp.send(xml("presence", { to: "slix@localhost", type: "subscribe" }));
    await js.next((s) => s.is("presence") && s.attrs.type === "subscribed" && s.attrs.from === "slix@localhost");
    await js.next((s) => s.is("presence") && s.attrs.type === "subscribe" && s.attrs.from === "slix@localhost");
    await js.xmpp.send(xml("presence", { to: "slix@localhost", type: "subscribed" }));
    await js.next((s) => s.is("presence") && !s.attrs.type && s.attrs.from === "slix@localhost/py");
    await slixEvent((e) => e.event === "presence" && e.frm === "js@localhost/web");

    for (const n of [1, 2, 3]) {
      await js.xmpp.send(xml("message", { to: "slix@localhost/py", type: "chat" }, xml("body", {}, `ping ${n}`)));
      const pong = await js.next((s) => s.is("message") && s.getChildText("body") === `pong ${n}`);
      expect(pong.attrs.from).toBe("slix@localhost/py");
    }
    const roster = await js.xmpp.iqCaller.get(xml("query", { xmlns: "jabber:iq:roster" }));
    expect(roster.getChild("item")?.attrs).toMatchObject({ jid: "slix@localhost", subscription: "both" });

    await js.xmpp.send(xml("message", { to: "slix@localhost", type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    await js.next((s) => s.is("presence") && s.attrs.type === "unavailable" && s.attrs.from === "slix@localhost/py");
    expect(await exited).toBe(0);
    await js.stop();
  });

  it("enables carbons with slixmpp's xep_0280 plugin and gets both kinds of copy", async () => {
    await farm.addUser("rose@localhost", "rose-pw");
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "desk" });
    const web = await connectClient({ port: farm.c2sPorts[0]!.port, username: "rose", password: "rose-pw", resource: "web" });
    for (const c of [js, web]) await c.xmpp.send(xml("presence"));
    const { slixEvent, exited } = runSlix(["--port", String(farm.c2sPorts[1]!.port), "--jid", "rose@localhost/py", "--password", "rose-pw", "--peer", "js@localhost", "--carbons"]);
    await slixEvent((e) => e.event === "session_start");
    await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp");

    // What rose's other resource receives, and what it sends, slixmpp sees as carbons.
    await js.xmpp.send(xml("message", { to: "rose@localhost/web", type: "chat" }, xml("body", {}, "to the web client")));
    await web.next((s) => s.is("message") && s.getChildText("body") === "to the web client");
    const received = await slixEvent((e) => e.event === "carbon_received");
    expect(received).toMatchObject({ frm: "js@localhost/desk", to: "rose@localhost/web", body: "to the web client" });
    await web.xmpp.send(xml("message", { to: "js@localhost", type: "chat" }, xml("body", {}, "from the web client")));
    const sent = await slixEvent((e) => e.event === "carbon_sent");
    expect(sent).toMatchObject({ frm: "rose@localhost/web", to: "js@localhost", body: "from the web client" });

    await js.xmpp.send(xml("message", { to: "rose@localhost/py", type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    expect(await exited).toBe(0);
    await Promise.all([js.stop(), web.stop()]);
  });
  it("finds its chat in its archive with slixmpp's xep_0313 plugin (XEP-0313), under the stanza-ids it was given", async () => {
    await farm.addUser("ivy@localhost", "ivy-pw");
    const js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "mam" });
    await js.xmpp.send(xml("presence"));
    const { slixEvent, exited } = runSlix(["--port", String(farm.c2sPorts[1]!.port), "--jid", "ivy@localhost/py", "--password", "ivy-pw", "--peer", "js@localhost"]);
    await slixEvent((e) => e.event === "session_start");
    const hello = await js.next((s) => s.is("message") && s.getChildText("body") === "hello from slixmpp");
    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "ping 1")));
    const pinged = await slixEvent((e) => e.event === "message" && e.body === "ping 1");
    await js.next((s) => s.is("message") && s.getChildText("body") === "pong 1");
    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "mam")));
    const asked = await slixEvent((e) => e.event === "message" && e.body === "mam");

    // What it sent and what it got, oldest first; those it got under the ids they came with.
    const archive = await slixEvent((e) => e.event === "mam");
    expect(archive.bodies).toEqual(["hello from slixmpp", "ping 1", "pong 1", "mam"]);
    expect([archive.ids![1], archive.ids![3]]).toEqual([pinged.stanza_id, asked.stanza_id]);

    await js.xmpp.send(xml("message", { to: hello.attrs.from, type: "chat" }, xml("body", {}, "bye")));
    await slixEvent((e) => e.event === "disconnected");
    expect(await exited).toBe(0);
    await js.stop();
  });
});
