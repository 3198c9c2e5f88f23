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
function attribute(name: string, value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  const special = quote === "'" ? ATTR_SPECIAL_APOS : ATTR_SPECIAL_QUOT;
  const escaped = ATTR_NEEDS.test(value) ? value.replace(special, (c) => ATTR_ESCAPES[c]!) : value;
  return ` ${name}=${quote}${escaped}${quote}`;
}

function openTag(el: Element): string {
  let out = `<${el.name}`;
  const attrs = el.attrs as Record<string, unknown>;
  for (const name in attrs) {
    const value = attrs[name];
    if (value === undefined || value === null) continue;
    out += attribute(name, String(value));
  }
  return out;
}

/** An element and its children as XML; the stack is an array, not the call stack. */
export function serialize(root: Element): string {
  let out = "";
  // Each frame: an element whose start tag is written, and the index of its next child.
  const stack: { el: Element; next: number }[] = [];
  const enter = (el: Element): void => {
    out += openTag(el);
    if (el.children.length === 0) out += "/>";
    else {
      out += ">";
      stack.push({ el, next: 0 });
    }
  };
  enter(root);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === frame.el.children.length) {
      out += `</${frame.el.name}>`;
      stack.pop();
      continue;
    }
    const child = frame.el.children[frame.next++]!;
    if (typeof child === "string") out += escapeText(child);
    else if (typeof child === "object") enter(child as Element);
    else out += escapeText(String(child));
  }
  return out;
}
