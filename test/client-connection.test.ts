// ClientConnection alone: a real one, with its real C2sContext, balancer,
// SQLite store and TLS certificate, on real loopback sockets, but no farm:
// the link to the router is a stand-in that records what the connection
// sends the sm, and the test answers as the sm would (c2s/session-frames.ts's
// dispatch: bound, bindFailed, deliver, taken). Stream open and features,
// header errors, STARTTLS, SASL PLAIN and SCRAM, binding, stanzas before
// binding, a stanza on its way to the sm, and XEP-0198's counters.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SessionOp } from "../lib/link/session-payload.js";
import type { C2sContext } from "../c2s/c2s-context.js";
import { addressKey } from "../c2s/client-address.js";
import { ClientConnection } from "../c2s/client-connection.js";
import type { Store } from "../xdb-sql/store.js";
import { frontContext, type C2sOverrides, type RecordingLink } from "./harness/c2s-front.js";
import { HEADER, RawStream } from "./harness/raw-stream.js";

const PLAIN = (user: string, password: string) =>
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString("base64")}</auth>`;
const BIND = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>";
const NS_SM = "urn:xmpp:sm:3";

interface Front {
  link: RecordingLink;
  ctx: C2sContext;
  port: number;
  connect(): Promise<RawStream>;
}

const fronts: { server: net.Server; ctx: C2sContext; store: Store; streams: RawStream[] }[] = [];

afterEach(async () => {
  for (const { server, ctx, store, streams } of fronts.splice(0)) {
    for (const s of streams) s.destroy();
    await ctx.shutdown(0);
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
});

/** A front end of one connection class on a loopback port, with the account u1@localhost (password pw). */
async function front(c2s: C2sOverrides = {}): Promise<Front> {
  const { ctx, link, store } = await frontContext(c2s);
  // As c2s-server.ts accepts a client: through the gate, then a connection.
  const server = net.createServer((socket) => {
    if (!ctx.gate.enter(addressKey(socket.remoteAddress!), ctx.sockets)) new ClientConnection(ctx, socket, false);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const streams: RawStream[] = [];
  fronts.push({ server, ctx, store, streams });
  const port = (server.address() as net.AddressInfo).port;
  return {
    link,
    ctx,
    port,
    connect: async () => {
      const s = await RawStream.connect(port);
      streams.push(s);
      return s;
    },
  };
}

/** Unencrypted PLAIN allowed, so that the exchanges after TLS can be tested without it. */
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };

/** Connects and opens a stream: its features received. */
async function opened(f: Front): Promise<RawStream> {
  const s = await f.connect();
  s.send(HEADER());
  await s.until(/<\/stream:features>/);
  return s;
}

/** Logs u1 in with PLAIN over a clear stream (the simulator's login, sim/login.ts) and opens the restarted stream. */
async function authenticated(f: Front): Promise<RawStream> {
  const s = await f.connect();
  await s.login({ security: "none", mechanism: "PLAIN", username: "u1", password: "pw", until: "authenticated" });
  s.received = s.received.slice(s.received.lastIndexOf("<stream:stream"));
  return s;
}

/** Resolves once `test` holds: state of the front end, looked at after each turn of the event loop. */
async function until(test: () => boolean): Promise<void> {
  while (!test()) await new Promise((resolve) => setImmediate(resolve));
}

/** Binds u1/r, answering the START as the sm does; returns the connection. */
async function bound(f: Front, s: RawStream): Promise<ClientConnection> {
  s.send(BIND);
  const start = await f.link.next(SessionOp.Start);
  const conn = f.ctx.get(start.meta.sid)!;
  conn.bound("u1@localhost/r", "sm-1/1");
  await s.until(/<jid>u1@localhost\/r<\/jid>/);
  s.received = "";
  return conn;
}

describe("stream open", () => {
  it("answers a header with its own and the features: STARTTLS required, no mechanism before it, the XEP-0478 limit", async () => {
    const f = await front();
    const got = (await opened(f)).received;
    expect(got).toMatch(/^<\?xml version='1.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http:\/\/etherx.jabber.org\/streams' from='localhost' id='[0-9a-f]+' version='1.0' xml:lang='en'>/);
    expect(got).toContain("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>");
    expect(got).not.toContain("<mechanisms");
    expect(got).toContain("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10240</max-bytes></limits>");
  });

  it("offers SCRAM and, inside TLS, PLAIN once STARTTLS is done", async () => {
    const f = await front();
    const s = await opened(f);
    s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await s.until(/<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'\/>/);
    await s.startTls();
    s.send(HEADER());
    const got = await s.until(/<\/stream:features>/);
    expect(got).toContain("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>");
    expect(got).not.toContain("<starttls");
  });

  it.each([
    ["a domain it does not serve", HEADER("elsewhere.example"), "host-unknown"],
    ["a version other than 1.x", HEADER().replace(" version='1.0'>", " version='0.9'>"), "unsupported-version"],
    ["no version at all", HEADER().replace(" version='1.0'>", ">"), "unsupported-version"],
    ["the wrong stream namespace", HEADER().replace("http://etherx.jabber.org/streams", "urn:example"), "invalid-namespace"],
    ["a DOCTYPE", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + HEADER().slice("<?xml version='1.0'?>".length), "not-well-formed"],
  ])("ends a stream whose header has %s with a stream error", async (_what, header, condition) => {
    const f = await front();
    const s = await f.connect();
    s.send(header);
    const got = await s.untilClosed();
    expect(got).toMatch(new RegExp(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>.*</stream:error></stream:stream>$`));
    expect(f.link.frames).toEqual([]);
  });
});

describe("SASL", () => {
  it("authenticates with the right password and restarts the stream, offering bind", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    expect(s.received).toContain("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
    expect(s.received).not.toContain("<mechanisms");
  });

  it("answers a wrong password with not-authorized, lets the client try again, and ends after three failures", async () => {
    const f = await front(CLEAR);
    const s = await opened(f);
    for (let i = 1; i <= 2; i++) {
      s.received = "";
      s.send(PLAIN("u1", "wrong"));
      await s.until(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized\/><\/failure>/);
    }
    s.received = "";
    s.send(PLAIN("nobody", "pw"));
    const got = await s.untilClosed();
    expect(got).toMatch(/^<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized\/><\/failure><stream:error><policy-violation /);
  });

  it.each(["SCRAM-SHA-1", "SCRAM-SHA-256"] as const)("authenticates with %s, the server's signature checked (the simulator's login)", async (mechanism) => {
    const f = await front(CLEAR);
    const s = await f.connect();
    await s.login({ security: "none", mechanism, username: "u1", password: "pw", until: "authenticated" });
    expect(s.received).toMatch(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[A-Za-z0-9+/=]+<\/success>/);
    const wrong = await f.connect();
    await expect(wrong.login({ security: "none", mechanism, username: "u1", password: "wrong" })).rejects.toThrow(/login failed: sasl-failure:not-authorized/);
  });

  it("refuses PLAIN in the clear unless allowed, naming encryption-required", async () => {
    const f = await front({ require_tls: false });
    const s = await opened(f);
    expect(s.received).not.toContain("<mechanism>PLAIN</mechanism>");
    s.send(PLAIN("u1", "pw"));
    await s.until(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required\/><\/failure>/);
  });
});

describe("binding", () => {
  it("asks the sm to start the session and answers with the JID it bound", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(BIND);
    const start = await f.link.next(SessionOp.Start);
    expect(start.key).toBe("u1@localhost");
    expect(start.meta).toMatchObject({ jid: "u1@localhost/r", ip: "127.0.0.1", secure: false });
    f.ctx.get(start.meta.sid)!.bound("u1@localhost/r", "sm-1/1");
    await s.until(/<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u1@localhost\/r<\/jid><\/bind><\/iq>$/);
    expect(f.ctx.sessions).toBe(1);
  });

  it("answers a bind the sm refused with the sm's condition, by the server", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(BIND);
    const start = await f.link.next(SessionOp.Start);
    f.ctx.get(start.meta.sid)!.bindFailed("resource-constraint");
    await s.until(/<iq type='error' id='b1'><error type='wait' by='localhost'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/error><\/iq>$/);
  });

  it("answers a resource RFC 7622 refuses with bad-request, and asks the sm nothing", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>\u202e</resource></bind></iq>");
    await s.until(/<iq type='error' id='b2'><error type='modify' by='localhost'><bad-request /);
    expect(f.link.frames).toEqual([]);
  });
});

describe("stanzas before binding", () => {
  it.each([
    ["before authentication", opened],
    ["after authentication, before bind", authenticated],
  ])("ends the stream with not-authorized for a stanza %s", async (_when, open) => {
    const f = await front(CLEAR);
    const s = await open(f);
    s.send("<message to='u1@localhost'><body>early</body></message>");
    expect(await s.untilClosed()).toMatch(/<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    expect(f.link.frames).toEqual([]);
  });

  it("holds a stanza sent while the bind is under way, and passes it on once bound", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(BIND + "<message to='u1@localhost' id='e1'><body>pipelined</body></message>");
    const start = await f.link.next(SessionOp.Start);
    expect(f.link.frames.map((x) => x.msg.op)).not.toContain(SessionOp.Stanza);
    f.ctx.get(start.meta.sid)!.bound("u1@localhost/r", "sm-1/1");
    const stanza = await f.link.next(SessionOp.Stanza);
    expect(stanza.xml.toString()).toContain(">pipelined<");
  });
});

describe("a bound session's stanzas", () => {
  it("go to the sm numbered, with 'from' set by the server and 'to' in its RFC 7622 form", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    const conn = await bound(f, s);
    s.send("<message to='U2@LocalHost' from='forged@localhost' id='m1' type='chat'><body>hi</body></message>");
    s.send("<presence/>");
    const first = await f.link.next(SessionOp.Stanza);
    const second = await f.link.next(SessionOp.Stanza);
    expect(first.key).toBe("u1@localhost");
    expect(first.meta).toEqual({ sid: conn.sid, seq: 1 });
    expect(first.xml.toString()).toBe("<message to='u2@localhost' from='u1@localhost/r' id='m1' type='chat'><body>hi</body></message>");
    expect(second.meta).toEqual({ sid: conn.sid, seq: 2 });
  });

  it("answers a stanza to a malformed JID itself with jid-malformed, and sends the sm nothing", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    await bound(f, s);
    s.send("<message to='a@b@c' id='m2'><body>x</body></message>");
    await s.until(/<message type='error' to='u1@localhost\/r' id='m2'><error type='modify' by='localhost'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/error><\/message>$/);
    expect(f.link.frames.filter((x) => x.msg.op === SessionOp.Stanza)).toEqual([]);
  });

  it("writes what the sm delivers to the socket as it came", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    const conn = await bound(f, s);
    conn.deliver("<message from='u2@localhost/x' to='u1@localhost/r'><body>yo</body></message>");
    await s.until(/^<message from='u2@localhost\/x' to='u1@localhost\/r'><body>yo<\/body><\/message>$/);
  });
});

describe("XEP-0198", () => {
  it("counts the client's stanzas, but acknowledges only those the sm took", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    const conn = await bound(f, s);
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<enabled xmlns='urn:xmpp:sm:3'\/>/);
    s.send("<message to='u1@localhost' id='a'><body>1</body></message><message to='u1@localhost' id='b'><body>2</body></message>");
    await f.link.next(SessionOp.Stanza);
    await f.link.next(SessionOp.Stanza);
    s.received = "";
    // The sm has not taken them: the <r/> is owed (for a second at most) rather than answered with them counted.
    s.send(`<r xmlns='${NS_SM}'/>`);
    await until(() => f.ctx.owesAck(conn));
    expect(s.received).toBe("");
    conn.taken(1);
    conn.taken(2);
    await s.until(/<a xmlns='urn:xmpp:sm:3' h='2'\/>/);
    expect(s.received).not.toMatch(/h='[01]'/);
  });

  it("counts what it delivers, drops what the client acknowledged, and ends a stream that acknowledges more than it got", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    const conn = await bound(f, s);
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<enabled/);
    for (const id of ["d1", "d2", "d3"]) conn.deliver(`<message id='${id}' to='u1@localhost/r'/>`);
    await s.until(/id='d3'/);
    // All three acknowledged, then a fourth that was never sent.
    s.send(`<a xmlns='${NS_SM}' h='3'/><a xmlns='${NS_SM}' h='4'/>`);
    expect(await s.untilClosed()).toMatch(/<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text [^>]*>acknowledged more stanzas than were sent</);
  });

  it("makes a session resumable: the sm is told first, then the client gets the id and the window", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    const conn = await bound(f, s);
    s.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const got = await s.until(/<enabled [^>]*\/>/);
    const resumable = await f.link.next(SessionOp.Resumable);
    expect(resumable.meta).toMatchObject({ sid: conn.sid, max: 300 });
    expect(got).toContain(`<enabled xmlns='${NS_SM}' id='${resumable.meta.id}' resume='true' max='300'/>`);
    expect(conn.resumeId).toBe(resumable.meta.id);
  });

  it("refuses a second enable and an enable before bind", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/><\/failed>/);
    await bound(f, s);
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<enabled/);
    s.received = "";
    s.send(`<enable xmlns='${NS_SM}'/>`);
    await s.until(/<failed xmlns='urn:xmpp:sm:3'><unexpected-request /);
  });
});
