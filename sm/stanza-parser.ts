// The stanzas frames carry, parsed into ltx Elements for the modules.
// ltx.parse builds a parser, a tokenizer and their six listeners for every
// stanza, and a tokenizer once ended cannot be written to again. One
// tokenizer serves every stanza here instead, and is replaced whenever a
// stanza leaves it anywhere but between elements.
import type { EventEmitter } from "node:events";
import { Element } from "ltx";
import ltxTokenizer from "ltx/src/parsers/ltx.js";

/** ltx's own tokenizer (the one ltx.parse uses), which @types/ltx types only as a module here. */
interface Tokenizer extends EventEmitter {
  write(data: string): void;
}
const SaxLtx = ltxTokenizer as unknown as new () => Tokenizer;

/**
 * Written after each stanza: a tokenizer left outside markup reads it as an
 * element, its start reported at its closing '>', the last character written;
 * one left inside markup (a tag, an attribute value, a comment, CDATA)
 * swallows it.
 */
const SENTINEL_NAME = "xfarm-sentinel";
const SENTINEL = `<${SENTINEL_NAME}/>`;

class StanzaParser {
  private tokenizer = this.fresh();
  /** The element being built; undefined between root elements. */
  private open: Element | undefined;
  /** The first root element closed. */
  private tree: Element | undefined;
  private writingSentinel = false;
  private sentinelSeen = false;

  parse(xml: string): Element | null {
    this.open = this.tree = undefined;
    this.sentinelSeen = false;
    try {
      this.tokenizer.write(xml);
      this.writingSentinel = true;
      this.tokenizer.write(SENTINEL);
    } catch {
      // ltx throws on an unknown entity, midway through its state.
      this.tokenizer = this.fresh();
      return null;
    } finally {
      this.writingSentinel = false;
    }
    const tree = this.tree ?? null;
    if (!this.sentinelSeen) this.tokenizer = this.fresh();
    this.open = this.tree = undefined;
    return tree;
  }

  private fresh(): Tokenizer {
    const tokenizer = new SaxLtx();
    // As ltx's Parser builds its tree: the first root element is the result, an end tag that does not match is ignored.
    tokenizer.on("startElement", (name: string, attrs: Record<string, string>) => {
      if (this.writingSentinel && name === SENTINEL_NAME) {
        this.sentinelSeen = true;
        return;
      }
      const el = new Element(name, attrs);
      this.open = this.open ? this.open.cnode(el) : el;
    });
    tokenizer.on("endElement", (name: string) => {
      const el = this.open;
      if (!el || name !== el.name) return;
      this.open = el.parent ?? undefined;
      if (!el.parent) this.tree ??= el;
    });
    tokenizer.on("text", (text: string) => this.open?.t(text));
    return tokenizer;
  }
}

const parser = new StanzaParser();

/** The stanza in a frame's XML; null when it holds no complete element. */
export function parseStanza(xml: Buffer): Element | null {
  return parser.parse(xml.toString("utf8"));
}
