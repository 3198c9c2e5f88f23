// XEP-0077 in-band registration (c2s/registration.ts, through stream
// negotiation) over sockets in memory: off by default, offered only where
// PLAIN is, the form, an account made as `xfarm user add` makes one (the
// client then logs in with it), a taken or malformed username, and the
// hourly limit per client address.
import { afterEach, describe, expect, it } from "vitest";
import { RegistrationLimit } from "../c2s/registration.js";
import { MemoryFront, type C2sOverrides } from "./harness/c2s-front.js";
import { HEADER, type RawStream } from "./harness/raw-stream.js";

const FEATURE = "<register xmlns='http://jabber.org/features/iq-register'/>";
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };
const REGISTER = (id: string, username: string, password: string) =>
  `<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${username}</username><password>${password}</password></query></iq>`;

const fronts: MemoryFront[] = [];
afterEach(async () => {
  for (const f of fronts.splice(0)) await f.close();
});

/** A stream opened on a new front end, its features read into `received`. */
async function opened(c2s: C2sOverrides): Promise<{ f: MemoryFront; s: RawStream }> {
  const f = await MemoryFront.open(c2s);
  fronts.push(f);
  const s = f.connect().stream;
  s.send(HEADER());
  await s.until(/<\/stream:features>/);
  return { f, s };
}

describe("in-band registration", () => {
  it("is off by default: not offered, and a registration iq ends the stream as any stanza before authentication does", async () => {
    const { s } = await opened(CLEAR);
    expect(s.received).not.toContain("iq-register");
    s.send("<iq type='get' id='g1'><query xmlns='jabber:iq:register'/></iq>");
    expect(await s.until(/<\/stream:stream>/)).toContain("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
  });

  it("is offered where PLAIN is: not in the clear, nor before STARTTLS when TLS is required", async () => {
    for (const c2s of [{ registration: true, require_tls: false }, { registration: true }]) {
      const { s } = await opened(c2s);
      expect(s.received).not.toContain("iq-register");
      // Asked anyway, it is refused as Prosody refuses it.
      s.send("<iq type='get' id='g1'><query xmlns='jabber:iq:register'/></iq>");
      await s.until(/id='g1'/);
      expect(s.received).toContain(
        "<iq type='error' id='g1'><error type='modify' by='localhost'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Encryption is required</text></error></iq>",
      );
    }
  });

  it("offers the form, makes the account, and lets the client log in with it", async () => {
    const { f, s } = await opened({ ...CLEAR, registration: true });
    expect(s.received).toContain(`</mechanisms>${FEATURE}<limits`);
    s.received = "";
    s.send("<iq type='get' id='g1'><query xmlns='jabber:iq:register'/></iq>");
    expect(await s.until(/<\/iq>/)).toMatch(/^<iq type='result' id='g1'><query xmlns='jabber:iq:register'><instructions>[^<]+<\/instructions><username\/><password\/><\/query><\/iq>$/);
    s.received = "";
    // As RFC 7622 prepares it: the account is the lower-case one.
    s.send(REGISTER("r1", "NewBie", "s3cret"));
    expect(await s.until(/id='r1'/)).toBe("<iq type='result' id='r1'/>");
    expect(await f.ctx.store.getCredentials("newbie@localhost")).toMatchObject({ "SHA-1": expect.anything(), "SHA-256": expect.anything() });
    // A second client logs in with SCRAM, against the keys the registration stored.
    const other = f.connect().stream;
    await other.login({ security: "none", mechanism: "SCRAM-SHA-256", username: "newbie", password: "s3cret", until: "authenticated" });
  });

  it.each([
    ["a username already taken", "cancel", "conflict", REGISTER("r1", "u1", "pw")],
    ["a username that is no localpart", "modify", "not-acceptable", REGISTER("r1", "no body", "pw")],
    ["a username with a domain", "modify", "not-acceptable", REGISTER("r1", "x@elsewhere", "pw")],
    ["no password", "modify", "not-acceptable", REGISTER("r1", "fresh", "")],
    ["a cancellation before authenticating", "auth", "not-authorized", "<iq type='set' id='r1'><query xmlns='jabber:iq:register'><remove/></query></iq>"],
  ])("answers %s with %s/%s, and the stream goes on", async (_what, type, condition, iq) => {
    const { s } = await opened({ ...CLEAR, registration: true });
    s.received = "";
    s.send(iq);
    await s.until(/id='r1'/);
    expect(s.received).toMatch(new RegExp(`^<iq type='error' id='r1'><error type='${type}' by='localhost'><${condition} `));
    s.send(REGISTER("r2", "fresh2", "pw"));
    await s.until(/<iq type='result' id='r2'\/>/);
  });

  it("makes at most c2s.registration_per_hour accounts from one address, as ejabberd refuses more; a taken name does not count", async () => {
    const { s } = await opened({ ...CLEAR, registration: true, registration_per_hour: 2 });
    s.received = "";
    for (const [id, username] of [["r1", "a1"], ["r2", "u1"], ["r3", "a2"], ["r4", "a3"]]) {
      s.send(REGISTER(id!, username!, "pw"));
      await s.until(new RegExp(`id='${id}'`));
    }
    expect(s.received).toMatch(/^<iq type='result' id='r1'\/><iq type='error' id='r2'><error type='cancel' by='localhost'><conflict [^]*<iq type='result' id='r3'\/><iq type='error' id='r4'>/);
    expect(s.received).toContain(
      "<iq type='error' id='r4'><error type='wait' by='localhost'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Users are not allowed to register accounts so quickly</text></error></iq>",
    );
  });
});

describe("RegistrationLimit", () => {
  it("slides: a registration counts for an hour, per address, and a given-back one not at all", () => {
    const limit = new RegistrationLimit(2, 100);
    const t0 = 1_000_000;
    expect(limit.take("a", t0)).toBe(true);
    expect(limit.take("a", t0 + 10)).toBe(true);
    expect(limit.take("a", t0 + 20)).toBe(false);
    expect(limit.take("b", t0 + 20)).toBe(true);
    limit.giveBack("a", t0 + 10);
    expect(limit.take("a", t0 + 30)).toBe(true);
    expect(limit.take("a", t0 + 3600_000 - 1)).toBe(false);
    expect(limit.take("a", t0 + 3600_000)).toBe(true);
  });

  it("forgets the address seen least lately beyond its bound", () => {
    const limit = new RegistrationLimit(1, 2);
    for (const address of ["a", "b", "c"]) expect(limit.take(address, 0)).toBe(true);
    expect(limit.take("b", 1)).toBe(false);
    expect(limit.take("a", 1)).toBe(true);
  });
});
