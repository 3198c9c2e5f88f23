// The SASL exchange (c2s/sasl-exchange.ts, driven by the connection) over
// sockets in memory: what each malformed or unexpected step is answered
// with, an exchange aborted and begun again, an authzid for someone else, and
// a client that pipelines its new stream behind its <auth/>, a disabled account.
import { afterEach, describe, expect, it } from "vitest";
import { MemoryFront } from "./harness/c2s-front.js";
import { HEADER, type RawStream } from "./harness/raw-stream.js";

const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
const CLEAR = { require_tls: false, allow_unencrypted_plain_auth: true };
const b64 = (text: string) => Buffer.from(text).toString("base64");
const PLAIN = (authzid: string, user: string, password: string) => `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${b64(`${authzid}\0${user}\0${password}`)}</auth>`;
const SCRAM_FIRST = `<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>${b64("n,,n=u1,r=abcdefghijklmnop")}</auth>`;
const failure = (condition: string) => `<failure xmlns='${NS_SASL}'><${condition}/></failure>`;

const fronts: MemoryFront[] = [];
afterEach(async () => {
  for (const f of fronts.splice(0)) await f.close();
});

/** A clear stream with its features read, on a front end that allows PLAIN in the clear. */
async function opened(): Promise<{ f: MemoryFront; s: RawStream }> {
  const f = await MemoryFront.open(CLEAR);
  fronts.push(f);
  const s = f.connect().stream;
  s.send(HEADER());
  await s.until(/<\/stream:features>/);
  s.received = "";
  return { f, s };
}

describe("SASL", () => {
  it.each([
    ["a mechanism it does not offer", `<auth xmlns='${NS_SASL}' mechanism='DIGEST-MD5'/>`, "invalid-mechanism"],
    ["no mechanism", `<auth xmlns='${NS_SASL}'/>`, "invalid-mechanism"],
    ["data that is not base64", `<auth xmlns='${NS_SASL}' mechanism='PLAIN'>not*base64</auth>`, "incorrect-encoding"],
    ["a response with no exchange under way", `<response xmlns='${NS_SASL}'>${b64("x")}</response>`, "malformed-request"],
    ["an element SASL does not have", `<success xmlns='${NS_SASL}'/>`, "malformed-request"],
    ["an authzid naming someone else", PLAIN("u2@localhost", "u1", "pw"), "invalid-authzid"],
    ["an account that does not exist", PLAIN("", "nobody", "pw"), "not-authorized"],
  ])("answers %s with <%s/> and keeps the stream", async (_what, auth, condition) => {
    const { s } = await opened();
    s.send(auth);
    await s.until(/<\/failure>/);
    expect(s.received).toBe(failure(condition));
    // The stream goes on: the client may authenticate now.
    s.send(PLAIN("u1@localhost", "u1", "pw"));
    await s.until(/<success/);
  });

  it("refuses a disabled account that proved its password with <account-disabled/> (RFC 6120 §6.5.1), and lets it in once enabled", async () => {
    const { f, s } = await opened();
    const store = f.ctx.store;
    await store.setAccountDisabled("u1@localhost", true);
    s.send(PLAIN("", "u1", "pw"));
    await s.until(/<\/failure>/);
    expect(s.received).toBe(failure("account-disabled"));
    await store.setAccountDisabled("u1@localhost", false);
    s.send(PLAIN("", "u1", "pw"));
    await s.until(/<success/);
  });

  it("answers a second <auth/> during an exchange with malformed-request, and <abort/> with aborted, after which a new exchange may begin", async () => {
    const { s } = await opened();
    s.send(SCRAM_FIRST);
    await s.until(/<\/challenge>/);
    s.received = "";
    s.send(SCRAM_FIRST);
    await s.until(/<\/failure>/);
    expect(s.received).toBe(failure("malformed-request"));
    s.received = "";
    s.send(SCRAM_FIRST);
    await s.until(/<\/challenge>/);
    s.send(`<abort xmlns='${NS_SASL}'/>`);
    await s.until(/<\/failure>/);
    expect(s.received).toMatch(/<\/challenge><failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted\/><\/failure>$/);
    s.send(PLAIN("", "u1", "pw"));
    await s.until(/<success/);
  });

  it("counts failures of every kind toward the three it allows, then ends the stream", async () => {
    const { s } = await opened();
    s.send(`<auth xmlns='${NS_SASL}' mechanism='X'/>`);
    await s.until(/<\/failure>/);
    s.send(SCRAM_FIRST);
    await s.until(/<\/challenge>/);
    s.send(`<abort xmlns='${NS_SASL}'/>`);
    await s.until(/<aborted\/>/);
    s.send(PLAIN("", "u1", "wrong"));
    const got = await s.until(/<\/stream:stream>/);
    expect(got).toMatch(
      /<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized\/><\/failure><stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too many failed authentication attempts<\/text><\/stream:error><\/stream:stream>$/,
    );
  });

  it("reads a new stream pipelined behind the <auth/> as the restarted stream, under the authenticated limits", async () => {
    const { f, s } = await opened();
    s.send(PLAIN("", "u1", "pw") + HEADER());
    const got = await s.until(/<\/stream:features>/);
    expect(got).toMatch(/^<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><\/success><\?xml version='1.0'\?><stream:stream [^>]*><stream:features><bind /);
    expect(got).toContain("<max-bytes>262144</max-bytes>");
    expect(f.ctx.sessions).toBe(1);
  });
});
