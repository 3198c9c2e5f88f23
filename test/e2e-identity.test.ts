// Identity end to end (RFC 7622, RFC 4013): accounts with non-ASCII names
// and passwords log in with slixmpp (SCRAM, SASLprep), the simulator's
// SCRAM client, raw PLAIN, and xmpp.js (SCRAM, no SASLprep; a non-ASCII
// password only: it base64s the username as Latin-1, not UTF-8, which no
// server can read); JIDs that RFC 7622 refuses get
// bad-request at bind and jid-malformed in stanzas, from clients on several
// loopback addresses, with the farm's processes the same and their memory
// read before and after.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { processStats, survivors, type ProcessStat } from "./harness/processes.js";
import { HEADER, secureStream, type RawStream } from "./harness/raw-stream.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";
import { login } from "../sim/raw-session.js";

const PYTHON = "/usr/bin/python3";
const SLIX = fileURLToPath(new URL("./interop/slix_client.py", import.meta.url));
const PROCS = ["router-1", "sm-1", "c2s-1"];

// A password SASLprep leaves as it is, so a client that does not prepare
// it (xmpp.js) still derives the right keys.
const PW = "pässwörd-ключ";
// One with a NO-BREAK SPACE, which SASLprep maps to a space: stored and
// checked prepared, it works as typed and as prepared.
const ZOE_PW = "pass\u00A0wörd";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** A raw stream logged in with PLAIN from `localAddress`, before bind. */
async function plainLogin(port: number, localAddress: string, user: string, password: string): Promise<RawStream> {
  const s = await secureStream(port, localAddress);
  s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${b64(`\0${user}\0${password}`)}</auth>`);
  await s.until(/<success|<failure/);
  expect(s.received).toMatch(/<success/);
  s.received = "";
  s.send(HEADER());
  await s.until(/<\/stream:features>/);
  return s;
}

async function bind(s: RawStream, resource: string): Promise<string> {
  s.received = "";
  s.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  return s.until(/<\/iq>|<iq[^>]*\/>/);
}

describe("identity: RFC 7622 JIDs and SASLprep, end to end", () => {
  let farm: Farm;
  let port: number;
  let before: Record<string, ProcessStat>;
  let amelie: TestClient;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1 });
    await farm.start();
    port = farm.c2sPorts[0]!.port;
    // Given in forms that normalize to jürgen@localhost, zoë@localhost, amelie@localhost.
    await farm.addUser("JU\u0308RGEN@LocalHost", PW);
    await farm.addUser("ZOË@localhost", ZOE_PW);
    await farm.addUser("Amelie@LOCALHOST.", PW);
    before = processStats(farm, PROCS);
  });

  afterAll(async () => {
    await amelie?.stop();
    await farm?.stop();
    farm?.cleanup();
  });

  it("stores the accounts under their RFC 7622 form", async () => {
    const list = await farm.cli("user", "list");
    expect(list.stdout.split("\n").filter(Boolean).sort()).toEqual(["amelie@localhost", "jürgen@localhost", "zoë@localhost"]);
  });

  it("logs xmpp.js in with SCRAM and a non-ASCII password", async () => {
    amelie = await connectClient({ port, username: "Amelie", password: PW, resource: "Büro" });
    expect(amelie.jid).toBe("amelie@localhost/Büro");
    // The mechanism a client used shows in the front end's log only.
    expect(await farm.waitFor((l) => l.msg === "authenticated" && l.user === "amelie@localhost")).toMatchObject({ mech: expect.stringMatching(/^SCRAM-/) });
  });

  it("logs the simulator's SCRAM client in as a non-ASCII user, in any of the user name's forms", async () => {
    for (const [mechanism, username] of [
      ["SCRAM-SHA-256", "Jürgen"],
      ["SCRAM-SHA-1", "JU\u0308RGEN"],
    ] as const) {
      const target = { host: "127.0.0.1", port, localAddress: "127.0.0.6", domain: "localhost", security: "starttls", ca: fs.readFileSync(process.env.XFARM_TEST_CERT!), mechanism } as const;
      const session = await login(target, username, PW);
      expect(session.jid).toMatch(/^jürgen@localhost\//);
      session.close();
    }
  });

  it("takes a PLAIN password as typed or as SASLprep has it, and a resource mapped by OpaqueString", async () => {
    for (const [address, password] of [
      ["127.0.0.2", ZOE_PW],
      ["127.0.0.3", "pass wörd"],
    ] as const) {
      const s = await plainLogin(port, address, "ZOË", password);
      // IDEOGRAPHIC SPACE becomes a space; the full JID is the normalized one.
      expect(await bind(s, "Desk\u3000Top")).toContain("<jid>zoë@localhost/Desk Top</jid>");
      s.destroy();
    }
  });

  it("answers a bind resource RFC 7622 refuses with bad-request", async () => {
    const s = await plainLogin(port, "127.0.0.4", "jürgen", PW);
    // RIGHT-TO-LEFT OVERRIDE, ZERO WIDTH SPACE, a control: none may be in a resource.
    for (const resource of ["evil\u202Etxt", "a\u200Bb", "a\u0085b"]) {
      expect(await bind(s, resource)).toMatch(/type=["']error["'][\s\S]*<bad-request/);
    }
    expect(await bind(s, "fine")).toContain("<jid>jürgen@localhost/fine</jid>");
    s.destroy();
  });

  it("answers stanzas to malformed JIDs with jid-malformed, and routes the rest by their normalized form", async () => {
    const s = await plainLogin(port, "127.0.0.5", "zoë", ZOE_PW);
    await bind(s, "raw");
    s.received = "";
    s.send("<message to='a\u200Bb@localhost' id='m1'><body>x</body></message>");
    await s.until(/id=["']m1["'][\s\S]*<jid-malformed/);
    s.send("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='♚@localhost'/></query></iq>");
    await s.until(/id=["']r1["'][\s\S]*<jid-malformed/);
    // Upper case and fullwidth forms reach amelie@localhost/Büro, a decomposed resource too.
    s.send("<message to='ＡＭＥＬＩＥ@LOCALHOST./Bu\u0308ro' type='chat'><body>grüß dich</body></message>");
    const got = await amelie.next((el) => el.is("message") && el.getChildText("body") === "grüß dich");
    expect(got.attrs.from).toBe("zoë@localhost/raw");
    expect(got.attrs.to).toBe("amelie@localhost/Büro");
    s.destroy();
  });

  it("logs slixmpp in with SCRAM, SASLprepping the password, and chats with xmpp.js", async () => {
    const probe = spawnSync(PYTHON, ["-c", "import slixmpp"]);
    if (probe.status !== 0) throw new Error("python3-slixmpp is not installed: apt-get install python3-slixmpp (.ci/run does)");
    const py = spawn(PYTHON, [SLIX, "--port", String(port), "--jid", "ZOË@localhost/py", "--password", ZOE_PW, "--peer", "amelie@localhost/Büro", "--ca", process.env.XFARM_TEST_CERT!]);
    let stderr = "";
    py.stderr.on("data", (d) => (stderr += d));
    const events: Record<string, string>[] = [];
    readline.createInterface({ input: py.stdout }).on("line", (line) => events.push(JSON.parse(line) as Record<string, string>));
    const hello = await amelie.next((el) => el.is("message") && el.getChildText("body") === "hello from slixmpp", 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; slixmpp events: ${JSON.stringify(events)} stderr: ${stderr}`);
    });
    expect(hello.attrs.from).toBe("zoë@localhost/py");
    expect(events.find((e) => e.event === "session_start")).toMatchObject({ jid: "zoë@localhost/py", mech: expect.stringMatching(/^SCRAM-SHA-/) });
    await amelie.xmpp.send(xml("message", { to: "zoë@localhost/py", type: "chat" }, xml("body", {}, "bye")));
    await new Promise((r) => (py.exitCode !== null ? r(null) : py.once("exit", r)));
    expect(py.exitCode).toBe(0);
  });

  it("shows every spelling of an unknown user one SCRAM salt, as it does for a real account", async () => {
    const s = await secureStream(port, "127.0.0.7");
    const saltOf = async (username: string) => {
      s.received = "";
      s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${b64(`n,,n=${username},r=abc`)}</auth>`);
      const challenge = /<challenge[^>]*>([^<]*)</.exec(await s.until(/<\/challenge>/))![1]!;
      s.send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      await s.until(/<aborted\/>|<failure/);
      return /,s=([^,]*)/.exec(Buffer.from(challenge, "base64").toString())![1];
    };
    // Two aborts; a third failure would end the stream.
    expect(await saltOf("Nobody")).toBe(await saltOf("ＮＯＢＯＤＹ"));
    s.destroy();
  });

  it("leaves every process running, with bounded memory", () => {
    const grown = survivors(farm, before);
    for (const name of PROCS) expect(grown[name], name).toBeLessThan(64 * 1024);
  });
});
