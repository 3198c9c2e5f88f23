// The stream parser hands its saxes parser back to a shared pool once a
// stream rests between stanzas: whatever the reads are cut into, the stanzas
// must come out the same, and errors must still be caught.
import v8 from "node:v8";
import type { Element } from "ltx";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { idleParsers } from "../lib/xml-parser-pool.js";
import { XmlStream, type StreamError, type StreamHeader, type XmlLimits } from "../lib/xml-stream.js";

const limits = (maxStanza = 10_000): XmlLimits => ({ maxStanza, maxDepth: 64, maxAttributes: 64, maxNameLength: 256 });

interface Seen {
  headers: StreamHeader[];
  elements: string[];
  errors: string[];
  ended: boolean;
}

function parse(chunks: Buffer[], maxStanza = 10_000): Seen {
  const seen: Seen = { headers: [], elements: [], errors: [], ended: false };
  const stream = new XmlStream(limits(maxStanza), {
    header: (h) => seen.headers.push(h),
    element: (el: Element, uri) => seen.elements.push(`${uri} ${el.toString()}`),
    end: () => (seen.ended = true),
    error: (err: StreamError) => seen.errors.push(`${err.condition}: ${err.message}`),
  });
  for (const c of chunks) stream.write(c);
  return seen;
}

const HEADER = `<?xml version='1.0'?><s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:example' to='localhost' version='1.0'>`;
const STANZAS = [
  `<message to='a@localhost' id='1'><body>h\u00e9llo \ud83d\udc1d &amp; &lt;b&gt;</body><x:extra/></message>`,
  `  \n `,
  `<iq type='get' id='2' title='a > b'><query xmlns='jabber:iq:roster'/></iq>`,
  ` `,
  `<presence><![CDATA[<raw>]]></presence>`,
];
const WHOLE = Buffer.from(HEADER + STANZAS.join("") + "</s:stream>");

/** Long enough for the sweep to take back the parser of a stream that rested before it. */
const SWEPT_MS = 2 * 1000 + 10;

describe("XmlStream", () => {
  // The sweep runs on one interval for the whole module: every test here must see the same clock.
  beforeAll(() => vi.useFakeTimers());
  afterAll(() => vi.useRealTimers());
  const reference = parse([WHOLE]);

  it("parses a whole stream: header, stanzas with the header's prefixes, end", () => {
    expect(reference.errors).toEqual([]);
    expect(reference.headers).toEqual([{ to: "localhost", version: "1.0", lang: undefined }]);
    expect(reference.elements).toHaveLength(3);
    expect(reference.elements[0]).toContain('<x:extra/>');
    expect(reference.elements[0]).toContain("h\u00e9llo \ud83d\udc1d &amp; &lt;b&gt;");
    expect(reference.ended).toBe(true);
  });

  it("gives the same stanzas however the bytes are cut, even inside a character or at a '>' in an attribute", () => {
    for (let cut = 1; cut < WHOLE.length; cut++) {
      expect(parse([WHOLE.subarray(0, cut), WHOLE.subarray(cut)]), `cut at ${cut}`).toEqual(reference);
    }
    const bytes = [...WHOLE].map((b) => Buffer.from([b]));
    expect(parse(bytes)).toEqual(reference);
  });

  it("holds no parser once idle, and keeps it while busy", () => {
    const streams = Array.from({ length: 1000 }, () => new XmlStream(limits(), { header: () => {}, element: () => {}, end: () => {}, error: () => {} }));
    for (const s of streams) {
      s.write(Buffer.from(HEADER));
      s.write(Buffer.from(STANZAS[0]!));
      s.write(Buffer.from(" "));
    }
    vi.advanceTimersByTime(SWEPT_MS);
    const idle = idleParsers();
    expect(idle).toBeGreaterThan(0);
    // An idle stream has none: its next stanza takes one from the pool, and keeps it while busy.
    streams[0]!.write(Buffer.from("<message/>"));
    expect(idleParsers()).toBe(idle - 1);
    vi.advanceTimersByTime(500);
    streams[0]!.write(Buffer.from("<message/> "));
    expect(idleParsers()).toBe(idle - 1);
    // One caught mid-stanza keeps its parser however long the stanza takes.
    streams[1]!.write(Buffer.from("<message><body>"));
    expect(idleParsers()).toBe(idle - 2);
    vi.advanceTimersByTime(SWEPT_MS);
    expect(idleParsers()).toBe(idle - 1);
    // A keepalive is not work: it neither takes a parser nor keeps one.
    streams[2]!.write(Buffer.from(" \n"));
    expect(idleParsers()).toBe(idle - 1);
    streams[1]!.write(Buffer.from("</body></message>"));
    streams[1]!.write(Buffer.from("\n"));
    expect(idleParsers()).toBe(idle - 1);
    vi.advanceTimersByTime(SWEPT_MS);
    expect(idleParsers()).toBe(idle);
  });

  it("keeps its saxes parser an object of fast properties, with every handler set", () => {
    // V8 makes an object that gains too many properties by computed name a
    // dictionary (saxes's on() does that), and parsing gets five times slower.
    v8.setFlagsFromString("--allow-natives-syntax");
    const hasFastProperties = new Function("o", "return %HasFastProperties(o)") as (o: object) => boolean;
    const stream = new XmlStream(limits(), { header: () => {}, element: () => {}, end: () => {}, error: () => {} });
    stream.write(Buffer.from(HEADER + STANZAS[0]));
    const parser = (stream as unknown as { pooled: { parser: object } | null }).pooled?.parser;
    expect(parser).toBeDefined();
    expect(hasFastProperties(parser!)).toBe(true);
  });

  it("keeps streams apart while they share the pooled parsers", () => {
    const seen: string[][] = [[], []];
    const streams = [0, 1].map(
      (i) =>
        new XmlStream(limits(), {
          header: () => {},
          element: (el) => seen[i]!.push(el.attrs.id as string),
          end: () => {},
          error: (err) => seen[i]!.push(`error ${err.condition}`),
        }),
    );
    // Each swept between stanzas, so that a parser passes from one stream to the other.
    const write = (i: number, text: string) => {
      streams[i]!.write(Buffer.from(text));
      vi.advanceTimersByTime(SWEPT_MS);
    };
    write(0, HEADER);
    write(1, HEADER);
    write(0, "<message id='a1'><body>half");
    write(1, "<message id='b1'/> ");
    write(1, "<message id='b2'/>");
    write(0, "</body></message><message id='a2'/>");
    write(1, "<message id='b3'>&bogus;</message>");
    write(0, "<message id='a3'/>");
    expect(seen).toEqual([["a1", "a2", "a3"], ["b1", "b2", "error not-well-formed"]]);
  });

  it("still catches errors after a parser came back from the pool", () => {
    const after = (tail: string) => parse([Buffer.from(HEADER + STANZAS[0]), Buffer.from(tail)]).errors;
    expect(after("<message></iq>")[0]).toMatch(/^not-well-formed/);
    expect(after("<!-- c -->")[0]).toMatch(/^restricted-xml/);
    expect(after("text<message/>")[0]).toMatch(/^bad-format/);
    expect(after("<message><body>" + "x".repeat(20_000))[0]).toMatch(/^policy-violation/);
    expect(parse([Buffer.from(HEADER), Buffer.from([0xc3, 0x28])]).errors[0]).toBe("not-well-formed: invalid UTF-8");
    expect(after("<y:thing/>")[0]).toMatch(/^not-well-formed/);
  });

  it("pools the parser of a stream the client ended, once its owner stops the stream", () => {
    const streams: XmlStream[] = [];
    const seen: string[] = [];
    for (let i = 0; i < 2; i++) {
      const stream: XmlStream = new XmlStream(limits(), {
        header: () => {},
        element: (el) => seen.push(`${i} ${el.attrs.id as string}`),
        end: () => stream.stop(),
        error: (err) => seen.push(`${i} error ${err.condition}`),
      });
      streams.push(stream);
    }
    streams[0]!.write(Buffer.from(HEADER + "<message id='a'/>"));
    const idle = idleParsers();
    streams[0]!.write(Buffer.from("</s:stream>"));
    expect(idleParsers()).toBe(idle + 1);
    // The next stream takes it, reset: a fresh document, header and all.
    streams[1]!.write(Buffer.from(HEADER + "<message id='b'/>"));
    expect(idleParsers()).toBe(idle);
    streams[1]!.write(Buffer.from("<message><body>x</message>"));
    expect(seen).toEqual(["0 a", "1 b", "1 error not-well-formed"]);
    // Bytes after the end are not the stream's: its parser stopped there, and is not pooled.
    const before = idleParsers();
    const third: XmlStream = new XmlStream(limits(), { header: () => {}, element: () => {}, end: () => third.stop(), error: () => {} });
    third.write(Buffer.from(HEADER + "</s:stream><s:stream>"));
    expect(idleParsers()).toBeLessThanOrEqual(before);
  });

  describe("hold, for a stream restart the client pipelined", () => {
    const AUTH = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>";
    const AFTER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><iq id='\u00e9'/>`;

    function holding(onHold: (stream: XmlStream, seen: Seen) => void): { stream: XmlStream; seen: Seen } {
      const seen: Seen = { headers: [], elements: [], errors: [], ended: false };
      const stream: XmlStream = new XmlStream(limits(), {
        header: (h) => seen.headers.push(h),
        element: (el: Element) => {
          seen.elements.push(el.toString());
          if (el.name === "auth") {
            stream.hold();
            onHold(stream, seen);
          }
        },
        end: () => (seen.ended = true),
        error: (err: StreamError) => seen.errors.push(`${err.condition}: ${err.message}`),
      });
      return { stream, seen };
    }

    it("keeps the bytes after the element, in the same read and later ones, for the next stream", () => {
      const { stream, seen } = holding(() => {});
      // The next header arrives in the same read as <auth/>, cut inside a two-byte character.
      const bytes = Buffer.from(HEADER + AUTH + AFTER);
      const cut = bytes.indexOf(Buffer.from("\u00e9")) + 1;
      stream.write(bytes.subarray(0, cut));
      stream.write(bytes.subarray(cut));
      expect(seen.errors).toEqual([]);
      expect(seen.elements).toHaveLength(1);
      const next = parse([stream.takeHeld()!]);
      expect(next.errors).toEqual([]);
      expect(next.headers).toHaveLength(1);
      expect(next.elements).toEqual(["jabber:client <iq id=\"\u00e9\"/>"]);
    });

    it("leaves the whitespace before a pipelined header to the old stream, and its parser to the pool", () => {
      const { stream } = holding(() => {});
      const idle = idleParsers();
      stream.write(Buffer.from(HEADER + AUTH + "\n "));
      stream.write(Buffer.from("\n" + AFTER));
      const held = stream.takeHeld()!;
      // Back in the pool at the restart (one made if the pool was empty), not dropped.
      expect(idleParsers()).toBe(Math.max(1, idle));
      const next = parse([held]);
      expect(next.errors).toEqual([]);
      expect(next.headers).toHaveLength(1);
    });

    it("keeps its parser through a SASL round trip, and hands it back if the client goes silent", () => {
      const { stream, seen } = holding(() => {});
      stream.write(Buffer.from(HEADER));
      const idle = idleParsers();
      stream.write(Buffer.from(AUTH));
      stream.resume();
      // The challenge's answer: parsed by the parser it had, no header replayed into another.
      stream.write(Buffer.from("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AA==</response>"));
      expect(idleParsers()).toBe(idle);
      expect(seen.errors).toEqual([]);
      expect(seen.elements).toHaveLength(2);
      // Every resting stream's parser back in the pool, this one's too; then an <auth/> the client never follows up.
      vi.advanceTimersByTime(SWEPT_MS);
      const rested = idleParsers();
      stream.write(Buffer.from(AUTH));
      expect(idleParsers()).toBe(rested - 1);
      vi.advanceTimersByTime(SWEPT_MS);
      expect(idleParsers()).toBe(rested);
      stream.resume();
      stream.write(Buffer.from("<message/>"));
      expect(seen.errors).toEqual([]);
      expect(seen.elements.at(-1)).toBe(`<message xmlns:x="urn:example"/>`);
    });

    it("goes on with the same stream on resume()", () => {
      const { stream, seen } = holding(() => {});
      stream.write(Buffer.from(HEADER + AUTH + "<presence/>"));
      stream.write(Buffer.from("<message/>"));
      expect(seen.elements).toHaveLength(1);
      stream.resume();
      expect(seen.errors).toEqual([]);
      expect(seen.elements.slice(1)).toEqual([`<presence xmlns:x="urn:example"/>`, `<message xmlns:x="urn:example"/>`]);
    });
  });
});
