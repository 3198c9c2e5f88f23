// The sm's stanza parser keeps one ltx tokenizer: it must read every frame's
// XML as ltx.parse does, and no malformed one may leave anything behind for
// the next.
import { parse } from "ltx";
import { describe, expect, it } from "vitest";
import { parseStanza } from "../sm/stanza-parser.js";

const asLtx = (xml: string): string | null => {
  try {
    return parse(xml)?.toString() ?? null;
  } catch {
    return null;
  }
};
const ours = (xml: string): string | null => parseStanza(Buffer.from(xml, "utf8"))?.toString() ?? null;

const WELL_FORMED = [
  "<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>hi &amp; bye &lt;3</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
  "<presence from='alice@localhost/a'><show>away</show><status>at lunch</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>",
  "<iq type='set' id='x'><query xmlns='jabber:iq:roster'><item jid='c@d' name='“quoted” &#x263A;'><group>G</group></item></query></iq>",
  "<message><body><![CDATA[<not a tag>]]></body><!-- a comment --></message>",
  "  <message id='spaced'/>\n",
];

const MALFORMED = [
  "",
  "text only",
  "<message><body>never closed",
  "<message id='1'/><b attr='unclosed",
  "<message id='2'/><!-- never ends",
  "<message id='3'/><![CDATA[ never ends",
  "<message id='4'/><?pi never ends",
  "<a>&bogus;</a>",
  "<message id='5'/><second>root</second>",
  "<message id='6'/><second>open",
  "<message><body>x</wrong></body></message>",
  "<xfarm-sentinel/><message id='7'/>",
  "<message><xfarm-sentinel/></message>",
  "<message id='8'/><xfarm-sentinel ",
  "<message id='9'/><xfarm-sentinel a='",
];

describe("sm: stanza parser", () => {
  it("reads what ltx.parse reads, well-formed or not", () => {
    for (const xml of [...WELL_FORMED, ...MALFORMED]) expect(ours(xml), xml).toBe(asLtx(xml));
  });

  it("reads each stanza the same after any malformed one", () => {
    for (const bad of MALFORMED) {
      ours(bad);
      for (const good of WELL_FORMED) expect(ours(good), `${good} after ${bad}`).toBe(asLtx(good));
    }
  });

  it("builds a fresh tree each time: nothing of one stanza reaches the next", () => {
    const first = parseStanza(Buffer.from("<message id='a'><body>1</body></message>"))!;
    const second = parseStanza(Buffer.from("<message id='b'><body>2</body></message>"))!;
    expect(first).not.toBe(second);
    expect(first.toString()).toBe('<message id="a"><body>1</body></message>');
    expect(second.parent).toBeNull();
  });
});
