// Property-based fuzzing of the stream parser and the writer (fast-check):
// hostile input built from XML's own pieces (deep nesting, long names, many
// attributes, entities, CDATA, comments, stray bytes), cut into arbitrary
// reads. Whatever comes in, the parser never throws, stops at its first
// error, does work linear in what it was given, and every element it hands
// on is written out by serialize() as XML that reads back the same and is no
// larger than the limit allows. A bounded run here; `npm run fuzz` runs long
// (FUZZ_RUNS). Inputs that once failed are kept in test/fuzz-corpus/ and
// replayed first.
import fs from "node:fs";
import fc from "fast-check";
import { parse as ltxParse, type Element } from "ltx";
import { SaxesParser } from "saxes";
import { afterEach, describe, expect, it, vi } from "vitest";
import { serialize } from "../lib/xml-serialize.js";
import { XmlStream, type XmlLimits } from "../lib/xml-stream.js";
import { cutIntoReads } from "./harness/fuzz-reads.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const TIMEOUT_MS = 30_000 + RUNS * 20;
const LIMITS: XmlLimits = { maxStanza: 4096, maxDepth: 12, maxAttributes: 6, maxNameLength: 24 };
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x' to='localhost' version='1.0'>`;
const CORPUS = new URL("./fuzz-corpus/", import.meta.url);

interface Outcome {
  elements: Element[];
  errors: string[];
  /** Elements handed on after the first error: must stay 0. */
  afterError: number;
}

/** Feeds the reads to a fresh stream as a socket would, the c2s way: one stream, every read. */
function run(reads: Buffer[]): Outcome {
  const out: Outcome = { elements: [], errors: [], afterError: 0 };
  const stream = new XmlStream(LIMITS, {
    header: () => {},
    element: (el) => {
      if (out.errors.length > 0) out.afterError++;
      out.elements.push(el);
    },
    end: () => {},
    error: (err) => out.errors.push(err.condition),
  });
  for (const r of reads) stream.write(r);
  return out;
}

// XML's pieces, hostile ones weighted in.
const name = fc.oneof(
  fc.constantFrom("message", "body", "iq", "x:y", "a", "presence", "q"),
  fc.stringMatching(/^[a-z][a-z0-9._-]{0,40}$/),
  fc.constantFrom("1bad", "x:", ":y", "a:b:c", "xmlns:z"),
);
const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom("&amp;", "&lt;", "&#x1F41D;", "&#0;", "&bogus;", "]]>", "\"'", "<", ">", "\u0000", "\ud800", "\uffff"),
);
const attr = fc.tuple(name, text, fc.constantFrom("'", '"')).map(([n, v, q]) => ` ${n}=${q}${v.replaceAll(q, "")}${q}`);
const piece: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(name, fc.array(attr, { maxLength: 9 })).map(([n, a]) => `<${n}${a.join("")}>`),
  fc.tuple(name, fc.array(attr, { maxLength: 3 })).map(([n, a]) => `<${n}${a.join("")}/>`),
  name.map((n) => `</${n}>`),
  text,
  fc.constantFrom("<![CDATA[<x>&]]>", "<!-- c -->", "<?pi x?>", "<!DOCTYPE x>", "<!ENTITY e 'x'>", " ", "\n"),
  fc.integer({ min: 1, max: 400 }).map((n) => "<a>".repeat(n)),
  fc.integer({ min: 1, max: 3000 }).map((n) => "z".repeat(n)),
);
const hostile = fc.array(piece, { maxLength: 60 }).map((ps) => ps.join(""));
const stream = hostile.chain((body) => {
  const bytes = Buffer.from(HEADER + body, "utf8");
  return cutIntoReads(bytes).map((reads) => ({ body, reads }));
});

function check(reads: Buffer[]): void {
  const resolve = vi.spyOn(SaxesParser.prototype, "resolve");
  const total = reads.reduce((n, r) => n + r.length, 0);
  const out = run(reads);
  // Linear work: at most a namespace lookup per tag read, and no tag is under 2 bytes.
  expect(resolve.mock.calls.length).toBeLessThanOrEqual(total + 2);
  resolve.mockRestore();
  expect(out.errors.length).toBeLessThanOrEqual(1);
  expect(out.afterError).toBe(0);
  for (const el of out.elements) {
    const xml = serialize(el);
    // What is passed on reads back as the same element, and escaping never blows it up.
    expect(ltxParse(xml).toString()).toBe(el.toString());
    expect(Buffer.byteLength(xml)).toBeLessThanOrEqual(2 * LIMITS.maxStanza);
  }
}

describe("fuzzing the stream parser", () => {
  afterEach(() => vi.restoreAllMocks());

  it("replays the inputs that once failed", () => {
    const files = fs.existsSync(CORPUS) ? fs.readdirSync(CORPUS).filter((f) => f.endsWith(".xml")) : [];
    for (const f of files) check([Buffer.from(HEADER), fs.readFileSync(new URL(f, CORPUS))]);
  });

  it("never throws, stops at its first error, and hands on only what it writes back the same", () => {
    fc.assert(
      fc.property(stream, ({ reads }) => check(reads)),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it("gives the same stanzas however a valid stream is cut", () => {
    const stanza = fc
      .tuple(fc.constantFrom("message", "presence", "iq"), fc.array(fc.tuple(fc.constantFrom("body", "x:y", "q"), fc.string({ maxLength: 20 })), { maxLength: 4 }))
      .map(([n, kids]) => `<${n} id='1'>${kids.map(([k, t]) => `<${k}>${t.replace(/[<&]/g, "")}</${k}>`).join("")}</${n}>`);
    fc.assert(
      fc.property(
        fc.array(stanza, { minLength: 1, maxLength: 6 }).chain((ss) => {
          const bytes = Buffer.from(HEADER + ss.join(" "), "utf8");
          return cutIntoReads(bytes).map((reads) => ({ bytes, reads }));
        }),
        ({ bytes, reads }) => {
          const whole = run([bytes]);
          const cut = run(reads);
          expect(cut.errors).toEqual(whole.errors);
          expect(cut.elements.map((e) => e.toString())).toEqual(whole.elements.map((e) => e.toString()));
        },
      ),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);
});
