// Writes a parsed element back out as XML, for what a process passes on
// from a client or a component. Iterative, so no nesting a sender chose can
// exhaust the stack (ltx's toString recurses), and sparing with escapes:
// only what XML requires is escaped, so that what is passed on is never much
// larger than what the sender sent (a stanza's size limit counts these
// bytes, and a link frame must hold them).
import type { Element } from "ltx";

// A > that starts a text piece may follow "]]" that ended the one before.
const TEXT_NEEDS = /[&<]|\]\]>|^>/;
const TEXT_SPECIAL = /[&<]|\]\]>|^>/g;
const TEXT_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", "]]>": "]]&gt;", ">": "&gt;" };

/** Character data: & and <, and > only where it could complete a "]]>". */
export function escapeText(text: string): string {
  return TEXT_NEEDS.test(text) ? text.replace(TEXT_SPECIAL, (c) => TEXT_ESCAPES[c]!) : text;
}

// Attribute values lose raw tabs and line ends to normalization at the
// reader (XML 1.0 §3.3.3), so those go out as character references.
const ATTR_NEEDS = /[&<'"\t\n\r]/;
const ATTR_SPECIAL_APOS = /[&<'\t\n\r]/g;
const ATTR_SPECIAL_QUOT = /[&<"\t\n\r]/g;
const ATTR_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  "'": "&#39;",
  '"': "&#34;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

/** ` name='value'`, quoted with whichever quote the value does not hold (apostrophes if both or neither). */
export function attribute(name: string, value: string): string {
  if (!ATTR_NEEDS.test(value)) return ` ${name}='${value}'`;
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const special = quote === "'" ? ATTR_SPECIAL_APOS : ATTR_SPECIAL_QUOT;
  return ` ${name}=${quote}${value.replace(special, (c) => ATTR_ESCAPES[c]!)}${quote}`;
}

/** An element and its children as XML; the stack is an array, not the call stack. */
export function serialize(root: Element): string {
  let out = "";
  // Open elements, and the index of each one's next child.
  const open: Element[] = [];
  const next: number[] = [];
  let el: Element | undefined = root;
  for (;;) {
    if (el) {
      out += `<${el.name}`;
      const attrs = el.attrs as Record<string, unknown>;
      for (const name in attrs) {
        const value = attrs[name];
        if (value !== undefined && value !== null) out += attribute(name, typeof value === "string" ? value : String(value));
      }
      if (el.children.length === 0) out += "/>";
      else {
        out += ">";
        open.push(el);
        next.push(0);
      }
      el = undefined;
    }
    const top = open.length - 1;
    if (top < 0) return out;
    const parent = open[top]!;
    const i = next[top]!;
    if (i === parent.children.length) {
      out += `</${parent.name}>`;
      open.pop();
      next.pop();
      continue;
    }
    next[top] = i + 1;
    const child = parent.children[i];
    if (typeof child === "string") out += TEXT_NEEDS.test(child) ? child.replace(TEXT_SPECIAL, (c) => TEXT_ESCAPES[c]!) : child;
    else if (typeof child === "object" && child !== null) el = child as Element;
    else out += escapeText(String(child));
  }
}
