// Property-based fuzzing of the c2s and XEP-0114 component stream state
// machines on a real farm (fast-check): random sequences of what a client or
// a component may send — headers good and bad, STARTTLS, SASL with good and
// garbage data, binding, stanzas of every kind with odd attributes, XEP-0198
// elements, stream ends, stray bytes — each cut into random reads. Whatever
// comes, the front end and the router stay up (same PIDs) and keep serving a
// real client. A bounded run here; `npm run fuzz` runs long (FUZZ_RUNS).
import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { cutIntoReads } from "./harness/fuzz-reads.js";
import { processStats, survivors, type ProcessStat } from "./harness/processes.js";
import { HEADER, RawStream } from "./harness/raw-stream.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
/** A case takes well under a second; a long run gets the time it needs. */
const TIMEOUT_MS = 30_000 + RUNS * 1_000;
const b64 = (s: string) => Buffer.from(s).toString("base64");

const jid = fc.constantFrom("alice@localhost", "alice@localhost/r", "localhost", "nobody@localhost", "x@elsewhere", "bot.fuzz.localhost", "", "@@", "a/b/c", "ALICE@LOCALHOST");
const attrValue = fc.oneof(fc.string({ maxLength: 12 }).map((s) => s.replace(/['<&]/g, "")), fc.constantFrom("get", "set", "result", "error", "bogus", "chat", "unavailable", "subscribe"));
const attrs = fc
  .array(fc.tuple(fc.constantFrom("to", "from", "type", "id", "xml:lang", "x"), fc.oneof(jid, attrValue)), { maxLength: 4 })
  .map((as) => [...new Map(as)].map(([k, v]) => ` ${k}='${v}'`).join(""));
const payload = fc.constantFrom(
  "",
  "<body>hi</body>",
  "<query xmlns='jabber:iq:roster'/>",
  "<query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query>",
  "<ping xmlns='urn:xmpp:ping'/>",
  "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind>",
  "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
  "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub>",
  "<vCard xmlns='vcard-temp'/>",
  "<a><b><c/></b></a>",
  "<x xmlns='jabber:x:data' type='submit'/>",
);
const stanza = fc.tuple(fc.constantFrom("message", "presence", "iq", "foo"), attrs, payload).map(([n, a, p]) => `<${n}${a}>${p}</${n}>`);
const clientStep = fc.oneof(
  { weight: 3, arbitrary: stanza },
  { weight: 1, arbitrary: fc.constantFrom(HEADER(), HEADER("elsewhere"), HEADER().replace("version='1.0'", "version='2.0'"), HEADER().replace("jabber:client", "jabber:server")) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${b64("\0alice\0alice-pw")}</auth>`,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${b64("\0alice\0wrong")}</auth>`,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>`,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${b64("n,,n=alice,r=abc")}</auth>`,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>${b64("garbage")}</auth>`,
      `<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64("c=biws,r=abc,p=xyz")}</response>`,
      `<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`,
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-BOGUS'/>`,
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
      "<r xmlns='urn:xmpp:sm:3'/>",
      "<a xmlns='urn:xmpp:sm:3' h='999'/>",
      "<a xmlns='urn:xmpp:sm:3' h='x'/>",
      "<resume xmlns='urn:xmpp:sm:3' previd='c2s-1~x~y' h='0'/>",
      "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom(" ", "\n", "</stream:stream>", "garbage", "<", "&", "<?xml version='1.0'?>", "\u00ff\u0000") },
);
const componentStep = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom("message", "presence", "iq"), attrs, payload).map(([n, a, p]) => `<${n}${a}>${p}</${n}>`) },
  { weight: 1, arbitrary: fc.constantFrom(" ", "<handshake>00</handshake>", "</stream:stream>", "junk", "<x:y/>") },
);

/** The steps' text, cut into reads at arbitrary points. */
const reads = (steps: fc.Arbitrary<string[]>) => steps.chain((ss) => cutIntoReads(Buffer.from(ss.join(""), "utf8"), 5));

/** Sends the reads, then waits (2 s at most) until the server closes the stream or has sent nothing for 100 ms. */
async function play(s: RawStream, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) s.send(c);
  const end = Date.now() + 2_000;
  let seen = s.received.length;
  let quietSince = Date.now();
  // Looked at every 10 ms, so that a case ends 100 ms after the server's last byte, not up to 200 ms.
  while (!s.closed && Date.now() - quietSince < 100 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
    if (s.received.length !== seen) {
      seen = s.received.length;
      quietSince = Date.now();
    }
  }
  s.destroy();
}

describe("fuzzing the c2s and component streams", () => {
  let farm: Farm;
  let port: number;
  let before: Record<string, ProcessStat>;
  let sentinel: TestClient;

  beforeAll(async () => {
    farm = await Farm.create({
      c2sCount: 1,
      c2s: { require_tls: false, allow_unencrypted_plain_auth: true, max_stanza_size_unauthenticated: 2048 },
      components: { "fuzz.localhost": "fuzz-secret" },
    });
    await farm.start();
    await farm.addAccounts({ "alice@localhost": "alice-pw", "bob@localhost": "bob-pw" });
    port = farm.c2sPorts[0]!.port;
    sentinel = await connectClient({ port, username: "bob", password: "bob-pw", resource: "sentinel" });
    before = processStats(farm, ["router-1", "sm-1", "c2s-1"]);
  });

  afterAll(async () => {
    await sentinel?.stop();
    await farm.stop();
    farm.cleanup();
  });

  /** A component stream past its handshake; the last run's component may still be leaving (conflict): try again. */
  async function componentStream(): Promise<RawStream> {
    for (;;) {
      const s = await RawStream.connect(farm.componentPort);
      s.send(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='fuzz.localhost'>`);
      const header = await s.until(/<stream:stream [^>]*>/);
      const id = /id='([^']+)'/.exec(header)![1]!;
      s.send(`<handshake>${createHash("sha1").update(id + "fuzz-secret").digest("hex")}</handshake>`);
      await s.until(/<handshake\/>|<conflict/);
      if (s.received.includes("<handshake/>")) return s;
      s.destroy();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const alive = () => {
    for (const [name, stat] of Object.entries(before)) {
      expect(() => process.kill(stat.pid, 0), `${name} is gone`).not.toThrow();
    }
  };

  it("survives random client streams", async () => {
    await fc.assert(
      fc.asyncProperty(reads(fc.array(clientStep, { maxLength: 12 }).map((ss) => [HEADER(), ...ss])), async (chunks) => {
        const s = await RawStream.connect(port, `127.0.0.${2 + Math.floor(Math.random() * 8)}`);
        await play(s, chunks);
        alive();
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it("survives random component streams after a good handshake", async () => {
    await fc.assert(
      fc.asyncProperty(reads(fc.array(componentStep, { maxLength: 10 })), async (chunks) => {
        const s = await componentStream();
        await play(s, chunks);
        alive();
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it("kept every process up, serving", async () => {
    survivors(farm, before);
    const alice = await connectClient({ port, username: "alice", password: "alice-pw" });
    await alice.xmpp.send(xml("message", { to: sentinel.jid, id: "after-fuzz", type: "chat" }, xml("body", {}, "still here")));
    await sentinel.next((s) => s.is("message") && s.attrs.id === "after-fuzz");
    await alice.stop();
  });
});
