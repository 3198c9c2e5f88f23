// What a linked process or an XEP-0114 component may send the router and the
// sm, on a real farm: a malformed frame, JSON of the wrong shape, a forged
// 'from', garbage, costs its sender its own link or stream, never a process,
// and the farm goes on routing for real clients. Also: names that
// Object.prototype has find no secret; a refused link learns nothing about
// which names exist; stanzas of a type the RFCs do not define are answered
// bad-request by the first process that reads them.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameType, decodeRouteHeader, encodeRoute, type Frame } from "../lib/link/frames.js";
import { SessionOp } from "../lib/link/session-payload.js";
import { Farm } from "./harness/farm.js";
import { processStats, survivors, type ProcessStat } from "./harness/processes.js";
import { RawLink } from "./harness/raw-link.js";
import { RawStream, boundStream, loggedInStream } from "./harness/raw-stream.js";

/** Names every plain JavaScript object answers to. */
const PROTOTYPE_NAMES = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];
/** What a lookup in a plain object finds for such a name, as a secret: what the router used to take. */
const inherited = (name: string) => String(({} as Record<string, unknown>)[name]);
/** Memory a process may gain from one of these tests before we call it a leak. */
const MAX_GROWTH_KB = 64 * 1024;

const componentHeader = (domain: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`;
const streamError = (condition: string) => new RegExp(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`);

/** A session payload built by hand (protocol §2), meta as given, JSON or not. */
function sessionPayload(op: number, meta: string, xml = ""): Buffer {
  const metaBytes = Buffer.from(meta);
  const head = Buffer.alloc(3);
  head.writeUInt8(op, 0);
  head.writeUInt16BE(metaBytes.length, 1);
  return Buffer.concat([head, metaBytes, Buffer.from(xml)]);
}

/** The session op and meta of a ROUTE frame received. */
function sessionOf(frame: Frame): { op: number; meta: Record<string, unknown> } {
  const payload = frame.body.subarray(decodeRouteHeader(frame.body).payloadOffset);
  return { op: payload.readUInt8(0), meta: JSON.parse(payload.toString("utf8", 3, 3 + payload.readUInt16BE(1))) as Record<string, unknown> };
}

/** When each process linked to the router, from `xfarm status`: a link that dropped and came back has a new time. */
async function linkedAt(farm: Farm): Promise<Record<string, number>> {
  const r = await farm.cli("status", "--json");
  expect(r.code).toBe(0);
  const entries = (JSON.parse(r.stdout) as { entries: { name: string; linkedAt: number; info: Record<string, unknown> }[] }).entries;
  return Object.fromEntries(entries.map((e) => [e.name, e.linkedAt]));
}

/** A real client's message reaches another real client: the farm still routes. */
async function stillRoutes(port: number, id: string): Promise<void> {
  const a = await boundStream(port, "u1", "pw", "127.0.0.5");
  const b = await boundStream(port, "u2", "pw", "127.0.0.6");
  a.stream.send(`<message to='${b.jid}' id='${id}' type='chat'><body>still here</body></message>`);
  await b.stream.until(new RegExp(`id=["']${id}["'][^>]*>\\s*<body>still here</body>`));
  a.stream.destroy();
  b.stream.destroy();
}

describe("links and components on a farm without a [components] table", () => {
  const HOSTILE = "c2s-hostile";
  const HOSTILE_SECRET = "configured-but-hostile";
  // A front end's info that the real c2s will never redirect to (draining, no capacity).
  const HOSTILE_INFO = { host: "127.0.0.1", port: 1, tlsPort: 0, weight: 1, capacity: 0, started: 1, draining: true };
  let farm: Farm;
  let before: Record<string, ProcessStat>;
  let linkedBefore: Record<string, number>;
  let adminSecret: string;

  const hostileLink = async (): Promise<RawLink> => {
    const { link, answer, body } = await RawLink.authenticate(farm.routerPort, {
      name: HOSTILE,
      role: "c2s",
      secret: HOSTILE_SECRET,
      info: HOSTILE_INFO,
      localAddress: "127.0.0.2",
    });
    expect(answer, JSON.stringify(body)).toBe(FrameType.Welcome);
    return link;
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1 });
    // One more link name with a secret, for a linked process that misbehaves; `xfarm start` adds the others.
    fs.mkdirSync(path.join(farm.dir, "data"), { recursive: true });
    fs.writeFileSync(path.join(farm.dir, "data", "secrets.toml"), `"${HOSTILE}" = "${HOSTILE_SECRET}"\n`, { mode: 0o600 });
    await farm.start();
    await farm.addUsers("u", 2, "pw", 64);
    adminSecret = (parseToml(fs.readFileSync(path.join(farm.dir, "data", "secrets.toml"), "utf8")) as Record<string, string>).admin!;
    before = processStats(farm, ["router-1", "sm-1", "c2s-1"]);
    linkedBefore = await linkedAt(farm);
  });

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
  });

  it("refuses an XEP-0114 component named like a property of every object", async () => {
    for (const name of PROTOTYPE_NAMES) {
      const s = await RawStream.connect(farm.componentPort, "127.0.0.2");
      s.send(componentHeader(name));
      const header = await s.until(/id='([0-9a-f]+)'/);
      const id = /id='([0-9a-f]+)'/.exec(header)![1]!;
      // The handshake a lookup through Object.prototype would have expected.
      s.send(`<handshake>${createHash("sha1").update(id + inherited(name)).digest("hex")}</handshake>`);
      expect(await s.untilClosed()).toMatch(streamError("host-unknown"));
      expect(s.received).not.toMatch(/<handshake\/>/);
    }
  });

  it("refuses such names, unknown names and wrong secrets on the link port in the same words", async () => {
    const refusal = async (name: string, secret: string) => {
      const { link, answer, body } = await RawLink.authenticate(farm.routerPort, { name, role: "sm", secret, info: { started: 1 }, localAddress: "127.0.0.3" });
      expect(answer).toBe(FrameType.Refused);
      await link.untilClosed();
      return body;
    };
    const wrongSecret = await refusal("sm-1", "not-its-secret");
    expect(wrongSecret).toEqual({ reason: "authentication failed" });
    for (const name of [...PROTOTYPE_NAMES, "sm-9", "x".repeat(300)]) expect(await refusal(name, inherited(name))).toEqual(wrongSecret);
  });

  it("ends the link of a linked process that sends a malformed frame, and only that link", async () => {
    const bodies = [
      "{",
      "null",
      "[]",
      '{"op": 7}',
      '{"op": "ping"}',
      '{"op": "members", "members": "everyone"}',
      '{"op": "load", "sessions": "many", "connections": 1, "lag": 0}',
      '{"op": "load", "sessions": -1, "connections": 1, "lag": 0}',
      '{"op": "info", "info": null}',
      '{"op": "info", "info": {"host": 5, "port": 5222}}',
      '{"op": "expect", "to": "c2s-1"}',
    ];
    for (const body of bodies) {
      const link = await hostileLink();
      link.sendBody(FrameType.Control, body);
      await link.untilClosed();
    }
    const frames = [
      Buffer.from([0, 0, 0, 0]), // length 0
      Buffer.from([0, 0, 0, 1, 0x7f]), // unknown frame type
      Buffer.from([0, 0, 0, 3, FrameType.Route, 9, 0]), // truncated ROUTE header
      encodeRoute("sm", "c2s-1", "u1@localhost", Buffer.alloc(0)), // another's name as from
      Buffer.from([0, 0, 0, 3, FrameType.Auth, 0x7b, 0x7d]), // AUTH again
    ];
    for (const frame of frames) {
      const link = await hostileLink();
      link.sendRaw(frame);
      await link.untilClosed();
    }
    // Before AUTH, a frame over link.max_auth_frame closes the link as soon as its length is read.
    const stranger = await RawLink.connect(farm.routerPort, "127.0.0.3");
    await stranger.next((f) => f.type === FrameType.Hello);
    stranger.sendRaw(Buffer.from([0, 1, 0, 1]));
    await stranger.untilClosed();
    // An op of a later version is ignored, and the link goes on; once authenticated, frames up to link.max_frame are read.
    const link = await hostileLink();
    link.sendBody(FrameType.Control, JSON.stringify({ op: "from-the-future", x: "x".repeat(200_000) }));
    link.sendBody(FrameType.Control, '{"op": "ping", "id": 42}');
    const pong = await link.next((f) => f.type === FrameType.Control && f.body.toString().includes('"pong"'));
    expect(JSON.parse(pong.body.toString())).toEqual({ op: "pong", id: 42 });
    link.destroy();
  });

  it("keeps the sm linked whatever session payloads a linked process routes to it", async () => {
    const link = await hostileLink();
    const toSm = (payload: Buffer) => link.sendRaw(encodeRoute("sm", HOSTILE, "u1@localhost", payload));
    toSm(sessionPayload(SessionOp.Stanza, "null", "<message/>"));
    toSm(sessionPayload(SessionOp.Stanza, '{"sid": 5}', "<message/>"));
    toSm(sessionPayload(SessionOp.End, '"sid"'));
    toSm(sessionPayload(SessionOp.Start, '{"sid": "s1", "jid": 7, "ip": "127.0.0.2", "secure": true}'));
    toSm(sessionPayload(SessionOp.Rebuild, '{"sid": "s2", "jid": "u1@localhost/r", "ip": "x", "secure": true, "interested": true, "replaces": "s1"}'));
    toSm(sessionPayload(SessionOp.Forward, "[]", "<message to='u1@localhost'/>"));
    toSm(sessionPayload(SessionOp.Start, "{not json"));
    toSm(sessionPayload(99, "{}"));
    toSm(Buffer.from([SessionOp.Stanza]));
    toSm(Buffer.from([SessionOp.Stanza, 0xff, 0xff, 0x7b]));
    // A well-formed STANZA for a session the sm does not hold is answered CLOSE (protocol §2):
    // the sm reads a link's frames in order, so once this answer comes it has read all of the above.
    toSm(sessionPayload(SessionOp.Stanza, '{"sid": "probe"}', "<message to='u2@localhost'/>"));
    const answer = await link.next((f) => f.type === FrameType.Route && sessionOf(f).meta.sid === "probe");
    expect(sessionOf(answer)).toEqual({ op: SessionOp.Close, meta: { sid: "probe", condition: "internal-server-error" } });
    link.destroy();
    await stillRoutes(farm.c2sPorts[0]!.port, "after-payloads");
  });

  it("closes an admin link that routes, or orders a drain of the wrong shape", async () => {
    const admin = async () => {
      const { link, answer } = await RawLink.authenticate(farm.routerPort, { name: "admin", role: "admin", secret: adminSecret, localAddress: "127.0.0.2" });
      expect(answer).toBe(FrameType.Welcome);
      return link;
    };
    const routing = await admin();
    routing.sendRaw(encodeRoute("sm", "admin", "u1@localhost", sessionPayload(SessionOp.Forward, "{}", "<message to='u1@localhost'/>")));
    await routing.untilClosed();
    const draining = await admin();
    draining.sendBody(FrameType.Control, '{"op": "drain", "name": "c2s-1", "rate": "as fast as you can"}');
    await draining.untilClosed();
    const r = await farm.cli("status", "--json");
    const c2s = (JSON.parse(r.stdout) as { entries: { name: string; info: { draining?: boolean } }[] }).entries.find((e) => e.name === "c2s-1");
    expect(c2s?.info.draining).toBeUndefined();
  });

  it("answers an iq without id or of an unknown type, and a presence of an unknown type, with bad-request", async () => {
    const { stream: s, jid } = await boundStream(farm.c2sPorts[0]!.port, "u1", "pw", "127.0.0.4");
    const badRequest = (name: string, id: string | null, text: string) =>
      new RegExp(
        // The c2s answers for the server: no 'from', the server in 'by' (RFC 6120 §8.3.1).
        `<${name} type='error' to='${jid}'${id === null ? "" : ` id='${id}'`}><error type='modify' by='localhost'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>` +
          `<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>${text}</text></error></${name}>`,
      );
    s.send("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await s.until(badRequest("iq", null, "an iq must have an id"));
    s.send("<iq type='bogus' id='t1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await s.until(badRequest("iq", "t1", "an iq's type must be get, set, result or error"));
    s.send("<iq id='t2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await s.until(badRequest("iq", "t2", "an iq's type must be get, set, result or error"));
    s.send("<presence type='bogus' id='p1' to='u2@localhost'/>");
    await s.until(badRequest("presence", "p1", "not a presence type of RFC 6121"));
    // RFC 6121 §5.2.2: a message of an unknown type is a normal message.
    s.send(`<message type='bogus' id='m1' to='${jid}'><body>taken as normal</body></message>`);
    await s.until(/<body>taken as normal<\/body>/);
    // An error is never answered, not even one without an id; the ping after it shows it was read.
    s.send("<iq type='error' to='nobody@elsewhere.example'/>");
    s.send("<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    const all = await s.until(/id=["']after["']/);
    expect(all).not.toMatch(/from=["']nobody@elsewhere\.example["']/);
    expect(all.match(/<message[^>]*id=["']m1["'][^>]*>/g)!.every((tag) => !/type=["']error["']/.test(tag))).toBe(true);
    s.destroy();
  });

  it("answers a bind iq without id with bad-request, and binds on the next", async () => {
    const s = await loggedInStream(farm.c2sPorts[0]!.port, "u2", "pw", "127.0.0.4");
    s.send("<iq type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await s.until(/<iq type='error'><error type='modify' by='localhost'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/error><\/iq>/);
    s.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await s.until(/<iq type='result' id='b2'>.*<jid>u2@localhost\/[^<]+<\/jid>/);
    s.destroy();
  });

  it("lost no process and no link to any of it, and kept its memory", async () => {
    const grown = survivors(farm, before);
    for (const [name, kb] of Object.entries(grown)) expect(kb, name).toBeLessThan(MAX_GROWTH_KB);
    const linked = await linkedAt(farm);
    for (const name of ["sm-1", "c2s-1"]) expect(linked[name], name).toBe(linkedBefore[name]);
    await stillRoutes(farm.c2sPorts[0]!.port, "at-the-end");
  });
});

describe("XEP-0114 components that misbehave", () => {
  const SECRETS = { "bot.localhost": "bot-secret", "echo.localhost": "echo-secret" };
  let farm: Farm;
  let before: Record<string, ProcessStat>;

  /** A component connected and authenticated by hand (XEP-0114 §3), from a loopback address of its own. */
  const component = async (domain: keyof typeof SECRETS, localAddress: string): Promise<RawStream> => {
    const s = await RawStream.connect(farm.componentPort, localAddress);
    s.send(componentHeader(domain));
    const id = /id='([0-9a-f]+)'/.exec(await s.until(/id='([0-9a-f]+)'/))![1]!;
    s.send(`<handshake>${createHash("sha1").update(id + SECRETS[domain]).digest("hex")}</handshake>`);
    await s.until(/<handshake\/>/);
    return s;
  };

  /** The echo component still reaches a real client, through the router and the sm. */
  const componentsStillRoute = async (id: string) => {
    const { stream: user, jid } = await boundStream(farm.c2sPorts[0]!.port, "u1", "pw", "127.0.0.5");
    const echo = await component("echo.localhost", "127.0.0.6");
    echo.send(`<message from='echo.localhost' to='${jid}' id='${id}'><body>from echo</body></message>`);
    await user.until(new RegExp(`id=["']${id}["'][^>]*>\\s*<body>from echo</body>`));
    echo.destroy();
    user.destroy();
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, components: SECRETS });
    await farm.start();
    await farm.addUsers("u", 2, "pw", 64);
    before = processStats(farm, ["router-1", "sm-1", "c2s-1"]);
  });

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
  });

  it("ends the stream of a component whose 'from' is not its own domain or a JID at it", async () => {
    for (const from of ["alice@localhost", "localhost", "x.bot.localhost", "user@x.bot.localhost", "echo.localhost", null]) {
      const bot = await component("bot.localhost", "127.0.0.2");
      const fromAttr = from === null ? "" : ` from='${from}'`;
      bot.send(`<message${fromAttr} to='u1@localhost' id='forged'><body>forged</body></message>`);
      expect(await bot.untilClosed()).toMatch(streamError("invalid-from"));
    }
    // Its own domain and the JIDs at it are fine.
    const bot = await component("bot.localhost", "127.0.0.2");
    const { stream: user, jid } = await boundStream(farm.c2sPorts[0]!.port, "u2", "pw", "127.0.0.3");
    bot.send(`<message from='bot.localhost' to='${jid}' id='own-1'><body>one</body></message>`);
    bot.send(`<message from='someone@bot.localhost/here' to='${jid}' id='own-2'><body>two</body></message>`);
    await user.until(/id=["']own-2["'][^>]*>\s*<body>two<\/body>/);
    expect(user.received).toMatch(/id=["']own-1["'][^>]*>\s*<body>one<\/body>/);
    bot.destroy();
    user.destroy();
  });

  it("ends the stream of a component that sends garbage or what is not a stanza, and nothing else", async () => {
    const cases: [string, RegExp][] = [
      ["<<<>>>", streamError("not-well-formed")],
      ["<foo from='bot.localhost'/>", streamError("unsupported-stanza-type")],
      [`<message xmlns='urn:example:other' from='bot.localhost' to='u1@localhost'/>`, streamError("unsupported-stanza-type")],
      // Nested deeper than xml.max_depth: the parser ends the stream before anything is built.
      [`<message from='bot.localhost' to='u1@localhost'>${"<a>".repeat(5000)}${"</a>".repeat(5000)}</message>`, streamError("policy-violation")],
    ];
    for (const [bytes, expected] of cases) {
      const bot = await component("bot.localhost", "127.0.0.2");
      bot.send(bytes);
      expect(await bot.untilClosed()).toMatch(expected);
      await componentsStillRoute(`still-${cases.findIndex(([b]) => b === bytes)}`);
    }
  });

  it("answers a component's iq without id or of an unknown type, and a presence of an unknown type, with bad-request", async () => {
    const bot = await component("bot.localhost", "127.0.0.2");
    const { stream: user, jid } = await boundStream(farm.c2sPorts[0]!.port, "u1", "pw", "127.0.0.3");
    const badRequest = (name: string, id: string) =>
      new RegExp(`<${name}(?=[^>]*\\bid=["']${id}["'])(?=[^>]*\\btype=["']error["'])[^>]*><error type=["']modify["']><bad-request xmlns=["']urn:ietf:params:xml:ns:xmpp-stanzas["']/>`);
    bot.send(`<iq type='get' from='bot.localhost' to='${jid}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await bot.until(/<iq [^>]*type=["']error["'][^>]*><error type=["']modify["']><bad-request [^>]*\/><text [^>]*>an iq must have an id</);
    bot.send(`<iq type='bogus' id='c1' from='bot.localhost' to='${jid}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await bot.until(badRequest("iq", "c1"));
    bot.send(`<presence type='bogus' id='c2' from='bot.localhost' to='${jid}'/>`);
    await bot.until(badRequest("presence", "c2"));
    // An error is never answered; a message of an unknown type is a normal one, and goes through.
    bot.send(`<iq type='error' from='bot.localhost' to='nobody@elsewhere.example'/>`);
    bot.send(`<message type='bogus' from='bot.localhost' to='${jid}' id='c3'><body>normal</body></message>`);
    bot.send(`<iq type='get' id='c4' from='bot.localhost' to='somebody@elsewhere.example'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await bot.until(/<iq(?=[^>]*\bid=["']c4["'])(?=[^>]*\btype=["']error["'])[^>]*><error type=["']cancel["']><remote-server-not-found/);
    expect(bot.received).not.toMatch(/from=["']nobody@elsewhere\.example["']/);
    await user.until(/id=["']c3["'][^>]*>\s*<body>normal<\/body>/);
    // None of it cost the component its stream.
    expect(bot.closed).toBe(false);
    bot.destroy();
    user.destroy();
  });

  it("lost no process, and kept its memory", async () => {
    const grown = survivors(farm, before);
    for (const [name, kb] of Object.entries(grown)) expect(kb, name).toBeLessThan(MAX_GROWTH_KB);
    await componentsStillRoute("at-the-end");
  });
});
