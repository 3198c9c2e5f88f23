// The simulator's login (sim/login.ts) on its own, fed a server's elements
// by hand: the paths the farm never takes (a required legacy session, no
// STARTTLS or mechanism offered, a refused bind) and a SCRAM proof that
// arrives after its connection was dropped. The paths against a real c2s
// are in client-connection.test.ts, and against Prosody in sim-prosody.
import { describe, expect, it } from "vitest";
import { Login, type LoginParams } from "../sim/login.js";

const FEATURES_SASL = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";

/** A login and what it did, in order: "write …", "starttls", "restart", "done …", "failed …". */
function script(params: Partial<LoginParams> = {}) {
  const did: string[] = [];
  const login = new Login(
    { domain: "example.org", security: "none", mechanism: "PLAIN", username: "u", password: "p", ...params },
    {
      write: (xml) => did.push(`write ${xml}`),
      startTls: () => did.push("starttls"),
      restart: () => did.push("restart"),
      done: (jid, features) => did.push(`done ${jid} ${features}`),
      failed: (kind) => did.push(`failed ${kind}`),
    },
  );
  return { login, did };
}

describe("sim/login.ts", () => {
  it("logs in with PLAIN, binds the resource asked for, and does the legacy session a server requires", () => {
    const { login, did } = script({ resource: "res" });
    login.open();
    login.element("features", FEATURES_SASL);
    expect(did.at(-1)).toBe(`write <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("\0u\0p").toString("base64")}</auth>`);
    login.element("success", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    expect(did.slice(-2)).toEqual(["restart", expect.stringMatching(/^write <\?xml version='1.0'\?><stream:stream [^>]*to='example.org'/)]);
    login.element("features", "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>");
    expect(did.at(-1)).toBe("write <iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>res</resource></bind></iq>");
    login.element("iq", `<iq type="result" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>u@example.org/res&amp;co</jid></bind></iq>`);
    expect(did.at(-1)).toBe("write <iq type='set' id='session'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    login.element("iq", "<iq type='result' id='session'/>");
    expect(did.at(-1)).toBe("done u@example.org/res&co ");
    expect(login.step).toBe("done");
  });

  it("skips a session marked optional, and stops where asked", () => {
    const { login, did } = script({ until: "authenticated" });
    login.open();
    login.element("features", FEATURES_SASL);
    login.element("success", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    const features = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";
    login.element("features", features);
    expect(did.at(-1)).toBe(`done null ${features}`);
    login.bind();
    login.element("iq", "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u@example.org/x</jid></bind></iq>");
    expect(did.at(-1)).toBe("done u@example.org/x ");
  });

  it("names what went wrong as the simulator counts it", () => {
    const noTls = script({ security: "starttls" });
    noTls.login.open();
    noTls.login.element("features", FEATURES_SASL);
    expect(noTls.did.at(-1)).toBe("failed starttls-not-offered");

    const noMech = script({ mechanism: "SCRAM-SHA-256" });
    noMech.login.open();
    noMech.login.element("features", FEATURES_SASL);
    expect(noMech.did.at(-1)).toBe("failed mechanism-not-offered:SCRAM-SHA-256");

    const refused = script();
    refused.login.open();
    refused.login.element("features", FEATURES_SASL);
    refused.login.element("failure", "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>no</text></failure>");
    expect(refused.did.at(-1)).toBe("failed sasl-failure:not-authorized");

    const unbound = script();
    unbound.login.open();
    unbound.login.element("features", FEATURES_SASL);
    unbound.login.element("success", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    unbound.login.element("features", "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    unbound.login.element("iq", "<iq type='error' id='bind'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    expect(unbound.did.at(-1)).toBe("failed bind-error:conflict");

    const ended = script();
    ended.login.open();
    ended.login.element("error", "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    expect(ended.did.at(-1)).toBe("failed stream-error:host-unknown");
  });

  it("asks for STARTTLS, hands the handshake to its user, and opens the encrypted stream after it", () => {
    const { login, did } = script({ security: "starttls", until: "secured" });
    login.open();
    expect(login.step).toBe("tls-features");
    login.element("features", "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>");
    login.element("proceed", "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    expect(did.at(-1)).toBe("starttls");
    login.open();
    expect(login.step).toBe("auth-features");
    login.element("features", FEATURES_SASL);
    expect(did.at(-1)).toBe(`done null ${FEATURES_SASL}`);
  });

  it.each([false, true])("writes the SCRAM proof once it is ready, unless its connection was dropped meanwhile (dropped: %s)", async (dropped) => {
    // SaltedPassword is the slow part: held here until the test lets it go.
    let release!: (salted: Buffer) => void;
    const { login, did } = script({ mechanism: "SCRAM-SHA-1", salted: () => new Promise<Buffer>((resolve) => (release = resolve)) });
    login.open();
    login.element("features", FEATURES_SASL.replace("PLAIN", "SCRAM-SHA-1"));
    const first = Buffer.from(/>([^<]+)<\/auth>/.exec(did.at(-1)!)![1]!, "base64").toString();
    const nonce = /r=([^,]+)/.exec(first)![1]!;
    const serverFirst = Buffer.from(`r=${nonce}server,s=${Buffer.from("salt").toString("base64")},i=4096`).toString("base64");
    login.element("challenge", `<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${serverFirst}</challenge>`);
    if (dropped) login.stop();
    const written = did.length;
    release(Buffer.alloc(20));
    // Every promise callback has run by the next macrotask.
    await new Promise((resolve) => setImmediate(resolve));
    if (dropped) expect(did.length).toBe(written);
    else expect(did.at(-1)).toMatch(/^write <response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[A-Za-z0-9+/=]+<\/response>$/);
  });
});
