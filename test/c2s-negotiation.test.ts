// Stream negotiation (c2s/stream-negotiation.ts, through the connection and
// its transport) over sockets in memory: features at each step, STARTTLS and
// direct TLS handshaken in memory, resource binding as START, STARTED and
// START_FAILED, and stanzas sent while the bind is on its way.
import { afterEach, describe, expect, it } from "vitest";
import { plainVoucher } from "../c2s/sasl/plain-cache.js";
import { SessionOp } from "../lib/link/session-payload.js";
import { MemoryFront, type C2sOverrides } from "./harness/c2s-front.js";
import { HEADER, type RawStream } from "./harness/raw-stream.js";

const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };
const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const MECHS = "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>";
const BIND = (resource: string, id = "b1") => `<iq type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`;

const fronts: MemoryFront[] = [];
afterEach(async () => {
  for (const f of fronts.splice(0)) await f.close();
});

async function front(c2s: C2sOverrides = {}): Promise<MemoryFront> {
  const f = await MemoryFront.open(c2s);
  fronts.push(f);
  return f;
}

/** Logs u1 in with PLAIN in the clear (the simulator's login) and opens the restarted stream: what came since is kept. */
async function authenticated(f: MemoryFront): Promise<RawStream> {
  const { stream } = f.connect();
  await stream.login({ security: "none", mechanism: "PLAIN", username: "u1", password: "pw", until: "authenticated" });
  stream.received = stream.received.slice(stream.received.lastIndexOf("<stream:stream"));
  return stream;
}

describe("features", () => {
  it("offers STARTTLS beside SCRAM when TLS is not required, and PLAIN in the clear only when allowed", async () => {
    for (const [allowPlain, mechs] of [
      [false, MECHS],
      [true, MECHS + "<mechanism>PLAIN</mechanism>"],
    ] as const) {
      const f = await front({ require_tls: false, allow_unencrypted_plain_auth: allowPlain });
      const { stream } = f.connect();
      stream.send(HEADER());
      const got = await stream.until(/<\/stream:features>/);
      expect(got).toContain(`<stream:features><starttls xmlns='${NS_TLS}'></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${mechs}</mechanisms>`);
    }
  });

  it("after STARTTLS, handshaken over the memory socket, restarts the stream and offers PLAIN, and no second STARTTLS", async () => {
    const f = await front();
    const { stream, conn } = f.connect();
    stream.send(HEADER());
    expect(await stream.until(/<\/stream:features>/)).toContain(`<starttls xmlns='${NS_TLS}'><required/></starttls>`);
    stream.send(`<starttls xmlns='${NS_TLS}'/>`);
    await stream.until(/<proceed/);
    await stream.startTls();
    expect(conn.secure).toBe(true);
    stream.send(HEADER());
    const got = await stream.until(/<\/stream:features>/);
    expect(got).toContain(`${MECHS}<mechanism>PLAIN</mechanism>`);
    expect(got).not.toContain("starttls");
    stream.send(`<starttls xmlns='${NS_TLS}'/>`);
    expect(await stream.until(/<\/stream:stream>/)).toContain("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the stream is already encrypted</text>");
  });

  it("on the direct-TLS port (XEP-0368), speaks TLS from the first byte", async () => {
    const f = await front();
    const { stream, conn } = f.connect(true);
    await stream.startTls();
    expect(conn.secure).toBe(true);
    stream.send(HEADER());
    expect(await stream.until(/<\/stream:features>/)).toContain("<mechanism>PLAIN</mechanism>");
  });

  it("after SASL, offers bind, the session, roster versioning, XEP-0198, XEP-0352 and the authenticated limit", async () => {
    const f = await front(CLEAR);
    const got = (await authenticated(f)).received;
    expect(got).toContain(
      "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>" +
        "<ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes></limits></stream:features>",
    );
  });
});

describe("binding", () => {
  it("asks the sm with START, keeps stanzas sent meanwhile, and passes them on once STARTED is answered", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(BIND("phone") + "<message to='u2@localhost' id='early'><body>first</body></message>");
    const start = await f.link.next(SessionOp.Start);
    expect(start.key).toBe("u1@localhost");
    // A PLAIN login's START hands the sm the password's voucher (protocol §2.8).
    const keys = (await f.store.getCredentials("u1@localhost"))!["SHA-256"]!;
    const plain = plainVoucher("u1@localhost", "pw", keys, "SHA-256").toString("base64");
    expect(start.meta).toEqual({ sid: start.meta.sid, jid: "u1@localhost/phone", ip: "127.0.0.1", secure: false, plain });
    const conn = f.ctx.get(start.meta.sid)!;
    expect(f.link.frames.filter((fr) => fr.msg.op === SessionOp.Stanza)).toEqual([]);
    conn.bound("u1@localhost/phone", "sm-1/1");
    await s.until(/<jid>u1@localhost\/phone<\/jid>/);
    const stanza = await f.link.next(SessionOp.Stanza);
    expect(stanza.meta).toEqual({ sid: conn.sid, seq: 1 });
    expect(stanza.xml.toString()).toBe("<message to='u2@localhost' id='early' from='u1@localhost/phone'><body>first</body></message>");
    expect(conn.isBound).toBe(true);
  });

  it("answers a second bind while the first is on its way with resource-constraint, and START_FAILED with the sm's condition", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send(BIND("a", "b1") + BIND("b", "b2"));
    const start = await f.link.next(SessionOp.Start);
    await s.until(/id='b2'/);
    expect(s.received).toMatch(/<iq type='error' id='b2'><error type='wait' by='localhost'><resource-constraint /);
    const conn = f.ctx.get(start.meta.sid)!;
    conn.bindFailed("conflict");
    await s.until(/id='b1'/);
    expect(s.received).toMatch(/<iq type='error' id='b1'><error type='cancel' by='localhost'><conflict /);
    // The client may try again.
    s.send(BIND("c", "b3"));
    expect((await f.link.next(SessionOp.Start)).meta.jid).toBe("u1@localhost/c");
  });

  it("hands the sm no voucher after a SCRAM login", async () => {
    const f = await front(CLEAR);
    const { stream } = f.connect();
    await stream.login({ security: "none", mechanism: "SCRAM-SHA-1", username: "u1", password: "pw", until: "authenticated" });
    stream.send(BIND("phone"));
    expect((await f.link.next(SessionOp.Start)).meta).toEqual({ sid: expect.any(String), jid: "u1@localhost/phone", ip: "127.0.0.1", secure: false });
  });

  it("binds the bare JID when the client asks for no resource, leaving the choice to the sm", async () => {
    const f = await front(CLEAR);
    const s = await authenticated(f);
    s.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    expect((await f.link.next(SessionOp.Start)).meta.jid).toBe("u1@localhost");
  });
});
