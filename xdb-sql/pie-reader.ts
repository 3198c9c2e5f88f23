// Reads a XEP-0227 file (<server-data xmlns='urn:xmpp:pie:0'>) one <user/>
// at a time, so a whole server's export never sits in memory. Follows
// XInclude (XEP-0227 §5; ejabberd writes one file per host that way), and
// takes a file whose root is a <host/> or a <user/> as well.
import fs from "node:fs";
import path from "node:path";
import { Element } from "ltx";
import { SaxesParser, type SaxesTagNS } from "saxes";

export const NS_PIE = "urn:xmpp:pie:0";
const NS_XINCLUDE = "http://www.w3.org/2001/XInclude";
const NS_XML = "http://www.w3.org/XML/1998/namespace";

export interface PieUser {
  /** The <host jid/> it was found in. */
  host: string;
  /** The <user/> element, every descendant carrying its namespace as an xmlns attribute where it changes. */
  user: Element;
  /** Where it came from, for messages. */
  file: string;
}

/** Yields every <user/> of the file and of the files it includes, in document order. */
export async function* readPie(file: string, host: string | null = null, seen: ReadonlySet<string> = new Set()): AsyncGenerator<PieUser> {
  const abs = path.resolve(file);
  if (seen.has(abs)) throw new Error(`${file}: XInclude loop`);
  const reader = new UserReader(abs, host);
  const input = fs.createReadStream(abs);
  for await (const chunk of input as AsyncIterable<Buffer>) {
    reader.write(chunk);
    for (const item of reader.take()) {
      if ("include" in item) yield* readPie(item.include, item.host, new Set([...seen, abs]));
      else yield item;
    }
  }
  reader.close();
  for (const item of reader.take()) {
    if ("include" in item) yield* readPie(item.include, item.host, new Set([...seen, abs]));
    else yield item;
  }
}

type Found = PieUser | { include: string; host: string | null };

/** The saxes side: builds each <user/> subtree and notes includes, in order. */
class UserReader {
  private readonly parser = new SaxesParser({ xmlns: true, position: true });
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private found: Found[] = [];
  /** Open elements from the root; the <user/> being built and its descendants, if inside one. */
  private path: string[] = [];
  private building: Element[] = [];
  private uris: string[] = [];
  private host: string | null;

  constructor(
    private readonly file: string,
    host: string | null,
  ) {
    this.host = host;
    const p = this.parser;
    p.on("opentag", (t) => this.open(t as SaxesTagNS));
    p.on("closetag", () => this.close1());
    p.on("text", (t) => this.building.at(-1)?.t(t));
    p.on("cdata", (t) => this.building.at(-1)?.t(t));
    p.on("error", (err) => {
      throw new Error(`${this.file}: ${err.message}`);
    });
  }

  write(chunk: Buffer): void {
    this.parser.write(this.decoder.decode(chunk, { stream: true }));
  }

  close(): void {
    this.parser.write(this.decoder.decode()).close();
    if (this.path.length > 0) throw new Error(`${this.file}: ends inside <${this.path.at(-1)}>`);
  }

  take(): Found[] {
    const f = this.found;
    this.found = [];
    return f;
  }

  private open(t: SaxesTagNS): void {
    if (this.building.length > 0) {
      this.openChild(t);
      return;
    }
    const where = `${this.file}:${this.parser.line}`;
    if (t.uri === NS_XINCLUDE && t.local === "include") {
      const href = attr(t, "href");
      if (!href) throw new Error(`${where}: <xi:include/> without href`);
      if (attr(t, "parse") === "text") throw new Error(`${where}: only XML inclusion is supported`);
      this.found.push({ include: path.resolve(path.dirname(this.file), href), host: this.host });
    } else if (t.uri !== NS_PIE) {
      throw new Error(`${where}: <${t.name}/> in namespace "${t.uri}" where XEP-0227 (${NS_PIE}) was expected`);
    } else if (t.local === "server-data" && this.path.length === 0) {
      // the root
    } else if (t.local === "host") {
      const jid = attr(t, "jid");
      if (!jid) throw new Error(`${where}: <host/> without jid`);
      this.host = jid;
    } else if (t.local === "user") {
      if (!this.host) throw new Error(`${where}: <user/> outside any <host/>`);
      this.openChild(t);
      return;
    } else {
      throw new Error(`${where}: unexpected <${t.local}/>`);
    }
    this.path.push(t.name);
  }

  private openChild(t: SaxesTagNS): void {
    const attrs: Record<string, string> = {};
    const parentUri = this.uris.at(-1);
    if (t.uri !== parentUri) attrs.xmlns = t.uri;
    for (const a of Object.values(t.attributes)) {
      if (a.prefix === "xmlns" || a.name === "xmlns") continue;
      if (a.prefix && a.uri !== NS_XML) {
        // A namespaced attribute keeps its prefix, declared on this element
        // so that the subtree stands alone once stored.
        attrs[`xmlns:${a.prefix}`] = a.uri;
      }
      attrs[a.name] = a.value;
    }
    const el = new Element(t.local, attrs);
    this.building.at(-1)?.cnode(el);
    this.building.push(el);
    this.uris.push(t.uri);
    this.path.push(t.name);
  }

  private close1(): void {
    this.path.pop();
    const el = this.building.pop();
    this.uris.pop();
    if (el && this.building.length === 0) this.found.push({ host: this.host!, user: el, file: this.file });
  }
}

function attr(t: SaxesTagNS, local: string): string | undefined {
  return Object.values(t.attributes).find((a) => a.local === local && !a.prefix)?.value;
}
