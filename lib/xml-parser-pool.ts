// The saxes parsers every XML stream of a process shares (lib/xml-stream.ts).
//
// Memory: a saxes parser with its state costs about 3 KB, and a front end
// holds thousands of idle streams. So an idle stream holds no parser: once a
// stream has rested between stanzas for a sweep or two (1–2 s), its parser
// goes back to a pool shared by every stream of the process, and the next
// bytes take one out again, replaying the stream header so that namespaces
// resolve as before. A busy stream keeps its parser: replaying the header
// for every stanza cost a tenth of a front end's CPU in a chat benchmark.
import { SaxesParser, type SaxesStartTagNS, type SaxesTagNS } from "saxes";

/** What a parser reports to the stream it is working for. */
export interface ParserOwner {
  fail(condition: string, text: string): void;
  /** saxes has read a start tag's name (its attributes are still to come). */
  opening(name: string): void;
  open(tag: SaxesTagNS): void;
  close(tag: SaxesTagNS): void;
  text(text: string): void;
}

/** A stream the sweep may take a parser back from. */
export interface RestingStream {
  /** Returns the parser to the pool if the stream is still between stanzas. */
  detachIfResting(): void;
}

/**
 * Thrown from inside a parser callback to stop saxes at once: a stream that
 * failed must not have the rest of its chunk parsed. The parser is then in
 * no state to reuse, and is let go.
 */
export const ABORT = new Error("parsing aborted");

/**
 * The properties where saxes keeps its handlers, which SaxesParser.on()
 * sets by a computed name. Set here by their names instead: V8 turns an
 * object that gains more than a few properties by computed name into a
 * dictionary, and then every field saxes reads for each character is a hash
 * lookup. With on() for these nine, a 200-byte message took 11.5 µs to
 * parse instead of 2.1 (docs/bench.md, "Chat"). A wrong name here shows in
 * the tests: its events never come.
 */
interface HandlerSlots {
  doctypeHandler(doctype: string): void;
  commentHandler(comment: string): void;
  piHandler(pi: unknown): void;
  errorHandler(err: Error): void;
  openTagStartHandler(tag: SaxesStartTagNS): void;
  openTagHandler(tag: SaxesTagNS): void;
  closeTagHandler(tag: SaxesTagNS): void;
  textHandler(text: string): void;
  cdataHandler(cdata: string): void;
}

/** A parser and the stream it is working for at the moment. */
export class PooledParser {
  readonly parser = new SaxesParser({ xmlns: true, position: true });
  owner: ParserOwner | null = null;

  constructor() {
    const p = this.parser as unknown as HandlerSlots;
    p.doctypeHandler = () => this.owner?.fail("not-well-formed", "a DOCTYPE is not allowed in XMPP (RFC 6120 §11.1)");
    p.commentHandler = () => this.owner?.fail("restricted-xml", "comments are not allowed in XMPP (RFC 6120 §11.1)");
    p.piHandler = () => this.owner?.fail("restricted-xml", "processing instructions are not allowed in XMPP (RFC 6120 §11.1)");
    p.errorHandler = (err) => this.owner?.fail("not-well-formed", err.message);
    // A parser let go of mid-chunk has nobody to read for: it stops at the next tag.
    p.openTagStartHandler = (tag) => {
      if (!this.owner) throw ABORT;
      this.owner.opening(tag.name);
    };
    p.openTagHandler = (tag) => this.owner?.open(tag);
    p.closeTagHandler = (tag) => this.owner?.close(tag);
    p.textHandler = (text) => this.owner?.text(text);
    p.cdataHandler = (text) => this.owner?.text(text);
  }
}

/** Idle parsers; more than this many are left to the garbage collector. */
const POOL_MAX = 64;
const pool: PooledParser[] = [];

/** Parsers waiting in the pool: for tests and metrics. */
export function idleParsers(): number {
  return pool.length;
}

/** A parser for `owner`: an idle one from the pool, else a new one. */
export function takeParser(owner: ParserOwner): PooledParser {
  const pooled = pool.pop() ?? new PooledParser();
  pooled.owner = owner;
  return pooled;
}

/**
 * A parser that finished its document and was let go of, back to the pool,
 * reset: a stream's whose root the client closed (every short session ends
 * so, and making a parser costs a login more than resetting one), or one
 * whose replayed root the resting stream closed.
 */
export function recycle(pooled: PooledParser): void {
  if (pooled.owner !== null || pool.length >= POOL_MAX || pool.includes(pooled)) return;
  pooled.parser.close();
  pool.push(pooled);
}

/** How often parsers of resting streams are taken back. */
const SWEEP_MS = 1000;
/** Streams that came to rest between stanzas since the last sweep, and before it. */
let restedNow = new Set<RestingStream>();
let restedBefore = new Set<RestingStream>();
let sweeper: NodeJS.Timeout | null = null;

/** `stream` came to rest between stanzas: the sweep takes its parser back if it stays so. */
export function markRested(stream: RestingStream): void {
  restedNow.add(stream);
  sweeper ??= setInterval(sweep, SWEEP_MS).unref();
}

/** Takes back the parser of every stream that has rested since before the last sweep. */
function sweep(): void {
  for (const s of restedBefore) if (!restedNow.has(s)) s.detachIfResting();
  restedBefore = restedNow;
  restedNow = new Set();
  if (restedBefore.size === 0) {
    clearInterval(sweeper!);
    sweeper = null;
  }
}
