// RFC 6120 stream errors and TLS/SASL policy, on a real c2s, with a raw
// socket for what no client library would send.
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { HEADER, RawStream, secureStream } from "./harness/raw-stream.js";
import { connectClient, xml } from "./harness/xmppjs.js";

const streamError = (condition: string) =>
  new RegExp(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>.*</stream:stream>$`);
const plainAuth = (user: string, pw: string) =>
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString("base64")}</auth>`;

describe("stream errors and policies", () => {
  let farm: Farm;
  let port: number;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, c2s: { max_stanza_size: 8192, auth_timeout: 2 } });
    await farm.start();
    await farm.addUser("erin@localhost", "erin-pw");
    await farm.addUser("frank@localhost", "frank-pw");
    port = farm.c2sPorts[0]!.port;
  });

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
  });

  it("requires STARTTLS before authentication and offers no mechanism in the clear", async () => {
    const s = await RawStream.connect(port);
    s.send(HEADER());
    const features = await s.until(/<\/stream:features>/);
    expect(features).toMatch(/<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/);
    expect(features).not.toMatch(/mechanism/);
    s.send(plainAuth("erin", "erin-pw"));
    expect(await s.until(/<failure/)).toMatch(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required\/>/);
    s.destroy();
  });

  it("takes a new stream header the client pipelined right after <auth/> (as Tsung sends it)", async () => {
    const s = await secureStream(port);
    s.send(plainAuth("erin", "erin-pw") + HEADER());
    await s.until(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
    await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    s.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await s.until(/<jid>erin@localhost\/[^<]+<\/jid>/);
    s.destroy();
  });

  it("goes on with the same stream when a pipelined <auth/> fails", async () => {
    const s = await secureStream(port);
    s.send(plainAuth("erin", "wrong") + plainAuth("erin", "erin-pw"));
    await s.until(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized\/>/);
    await s.until(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
    s.destroy();
  });

  it("offers SCRAM and PLAIN after STARTTLS, and PLAIN works there", async () => {
    const s = await secureStream(port);
    expect(s.received).toMatch(/<mechanism>SCRAM-SHA-256<\/mechanism><mechanism>SCRAM-SHA-1<\/mechanism><mechanism>PLAIN<\/mechanism>/);
    s.send(plainAuth("erin", "erin-pw"));
    await s.until(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/);
    s.send(HEADER());
    const f = await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    expect(f).toMatch(/<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional\/><\/session>/);
    s.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    const bound = await s.until(/<jid>erin@localhost\/[^<]+<\/jid>/);
    expect(bound).toMatch(/<iq type='result' id='b1'>/);
    // The legacy session iq is answered for old clients.
    s.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    await s.until(/<iq type='result' id='s1'\/>/);
    // Whitespace keepalives are accepted.
    s.send("  \n ");
    s.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await s.until(/id=["']p1["']/);
    s.destroy();
  });

  it("serves direct TLS on the second port (XEP-0368)", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: farm.c2sPorts[0]!.tlsPort, servername: "localhost" });
    await new Promise((r, j) => socket.once("secureConnect", r).once("error", j));
    let text = "";
    socket.on("data", (d) => (text += d));
    socket.write(HEADER());
    await expect.poll(() => text, { timeout: 5000 }).toMatch(/<mechanism>PLAIN<\/mechanism>/);
    expect(text).not.toMatch(/starttls/);
    socket.destroy();
    const c = await connectClient({ port: farm.c2sPorts[0]!.tlsPort, tls: true, username: "frank", password: "frank-pw" });
    expect(c.jid).toMatch(/^frank@localhost\//);
    await c.stop();
  });

  it("closes a malformed stream with not-well-formed, and only that stream", async () => {
    const bystander = await connectClient({ port, username: "frank", password: "frank-pw", resource: "by" });
    const s = await RawStream.connect(port);
    s.send(HEADER());
    await s.until(/<\/stream:features>/);
    s.send("<message><body>oops</message>");
    expect(await s.untilClosed()).toMatch(streamError("not-well-formed"));
    // The other stream is unaffected.
    const pong = await bystander.xmpp.iqCaller.request(xml("iq", { type: "get", to: "localhost" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    expect(pong.attrs.type).toBe("result");
    await bystander.stop();
  });

  it("rejects a DOCTYPE with not-well-formed and a comment with restricted-xml", async () => {
    const s = await RawStream.connect(port);
    s.send(`<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x "y">]>`);
    s.send(HEADER().replace("<?xml version='1.0'?>", ""));
    expect(await s.untilClosed()).toMatch(streamError("not-well-formed"));
    const c = await RawStream.connect(port);
    c.send(HEADER());
    await c.until(/<\/stream:features>/);
    c.send("<!-- hello -->");
    expect(await c.untilClosed()).toMatch(streamError("restricted-xml"));
  });

  it("answers a bad stream namespace with invalid-namespace and an unknown host with host-unknown", async () => {
    const a = await RawStream.connect(port);
    a.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    const ta = await a.untilClosed();
    expect(ta).toMatch(/^<\?xml version='1.0'\?><stream:stream /);
    expect(ta).toMatch(streamError("invalid-namespace"));
    const b = await RawStream.connect(port);
    b.send(HEADER("example.org"));
    expect(await b.untilClosed()).toMatch(streamError("host-unknown"));
  });

  it("closes a stream with policy-violation when a stanza exceeds the size limit", async () => {
    const s = await secureStream(port);
    s.send(plainAuth("erin", "erin-pw"));
    await s.until(/<success/);
    s.send(HEADER());
    await s.until(/<\/stream:features>/);
    s.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await s.until(/<jid>/);
    s.send(`<message to='frank@localhost'><body>${"x".repeat(10_000)}</body></message>`);
    expect(await s.untilClosed()).toMatch(streamError("policy-violation"));
  });

  it("times out a client that never authenticates with connection-timeout", async () => {
    const s = await RawStream.connect(port);
    s.send(HEADER());
    await s.until(/<\/stream:features>/);
    expect(await s.untilClosed(6000)).toMatch(streamError("connection-timeout"));
  });
});

describe("PLAIN without TLS", () => {
  let farm: Farm;

  beforeAll(async () => {
    // Even where TLS is optional, PLAIN is never offered or accepted in the clear.
    farm = await Farm.create({ c2sCount: 1, c2s: { require_tls: false } });
    await farm.start();
    await farm.addUser("gina@localhost", "gina-pw");
  });

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
  });

  it("is refused with encryption-required while SCRAM is offered", async () => {
    const s = await RawStream.connect(farm.c2sPorts[0]!.port);
    s.send(HEADER());
    const features = await s.until(/<\/stream:features>/);
    expect(features).toMatch(/<mechanism>SCRAM-SHA-256<\/mechanism>/);
    expect(features).not.toMatch(/<mechanism>PLAIN<\/mechanism>/);
    s.send(plainAuth("gina", "gina-pw"));
    expect(await s.until(/<failure/)).toMatch(/<encryption-required\/>/);
    s.destroy();
  });
});
