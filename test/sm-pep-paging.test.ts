// Retrieving the items of a PEP node larger than one stanza the sm may send
// (XEP-0060 §6.5.4, §6.5.7; XEP-0059): cut to what fits, newest kept, with
// a result set saying so; paged with <max/>, <after/>, <before/>, <index/>;
// an item that alone does not fit is answered resource-constraint. No frame
// over the link's limit is ever sent.
import type { Element } from "ltx";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HEADER_ALLOWANCE } from "../lib/link/frames.js";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const RSM = "http://jabber.org/protocol/rsm";
const INFO = "http://jabber.org/protocol/disco#info";
const NODE = "urn:example:gallery";
const ALICE = `alice@${DOMAIN}`;
/** The largest stanza the sm sends here: room for three items of ITEM bytes, not four. */
const BUDGET = 100_000;
const ITEM = 30_000;

async function ask(client: Client, xml: string): Promise<Element> {
  const answers = (await client.request(xml)).filter((s) => s.name === "iq" && (s.attrs.type === "result" || s.attrs.type === "error"));
  expect(answers).toHaveLength(1);
  return answers[0]!;
}

const get = (attrs = "", inner = "", set = "") =>
  `<iq type='get' id='g' to='${ALICE}'><pubsub xmlns='${PUBSUB}'><items node='${NODE}'${attrs}>${inner}</items>${set ? `<set xmlns='${RSM}'>${set}</set>` : ""}</pubsub></iq>`;

/** The ids answered, and the result set as [first, its index, last, count], if any. */
function page(answer: Element): { ids: string[]; set?: (string | undefined)[] } {
  expect(answer.attrs.type).toBe("result");
  const pubsub = answer.getChild("pubsub", PUBSUB)!;
  const ids = pubsub.getChild("items")!.getChildren("item").map((i) => i.attrs.id as string);
  const set = pubsub.getChild("set", RSM);
  if (!set) return { ids };
  const first = set.getChild("first");
  return { ids, set: [first?.getText(), first?.attrs.index, set.getChildText("last") ?? undefined, set.getChildText("count") ?? undefined] };
}

describe("sm PEP items larger than a stanza", () => {
  let h: Harness;
  let alice: Client;
  let bob: Client;

  beforeEach(async () => {
    h = await Harness.create(["alice", "bob"], { maxFrame: BUDGET + HEADER_ALLOWANCE });
    alice = await h.connect(`${ALICE}/a`);
    bob = await h.connect(`bob@${DOMAIN}/b`);
    await h.store.putPepNode(ALICE, { node: NODE, config: { "pubsub#access_model": "open", "pubsub#max_items": "10" } });
    for (let i = 1; i <= 6; i++) {
      const xml = `<picture xmlns='urn:example:picture'>${String(i).repeat(ITEM)}</picture>`;
      await h.store.publishPepItem(ALICE, NODE, { id: `i${i}`, xml, published: new Date() }, 10);
    }
  });
  afterEach(async () => {
    expect(h.port.refused).toEqual([]);
    await h.close();
  });

  it("advertises result set management for pubsub", async () => {
    const info = await ask(alice, `<iq type='get' id='d' to='${ALICE}'><query xmlns='${INFO}'/></iq>`);
    expect(info.getChild("query", INFO)!.getChildren("feature").map((f) => f.attrs.var)).toContain(`${PUBSUB}#rsm`);
  });

  it("cuts a request for every item to the newest that fit, saying where they start of how many", async () => {
    expect(page(await ask(bob, get()))).toEqual({ ids: ["i4", "i5", "i6"], set: ["i4", "3", "i6", "6"] });
    // The newest max_items when they fit, as asked and without a set; cut like the rest when not.
    expect(page(await ask(bob, get(" max_items='2'")))).toEqual({ ids: ["i5", "i6"] });
    expect(page(await ask(bob, get(" max_items='5'")))).toEqual({ ids: ["i4", "i5", "i6"], set: ["i4", "2", "i6", "5"] });
    // Asked by id, the first ones asked that fit.
    const byId = ["i2", "i3", "i5", "i6"].map((id) => `<item id='${id}'/>`).join("");
    expect(page(await ask(bob, get("", byId)))).toEqual({ ids: ["i2", "i3", "i5"], set: ["i2", "0", "i5", "4"] });
  });

  it("pages with XEP-0059: the last page, before and after an item, from an index, the count alone", async () => {
    expect(page(await ask(bob, get("", "", "<max>2</max><before/>")))).toEqual({ ids: ["i5", "i6"], set: ["i5", "4", "i6", "6"] });
    expect(page(await ask(bob, get("", "", "<max>10</max><before>i4</before>")))).toEqual({ ids: ["i1", "i2", "i3"], set: ["i1", "0", "i3", "6"] });
    expect(page(await ask(bob, get("", "", "<after>i2</after>")))).toEqual({ ids: ["i3", "i4", "i5"], set: ["i3", "2", "i5", "6"] });
    expect(page(await ask(bob, get("", "", "<max>2</max><index>1</index>")))).toEqual({ ids: ["i2", "i3"], set: ["i2", "1", "i3", "6"] });
    expect(page(await ask(bob, get("", "", "<max>2</max>")))).toEqual({ ids: ["i1", "i2"], set: ["i1", "0", "i2", "6"] });
    expect(page(await ask(bob, get("", "", "<max>0</max>")))).toEqual({ ids: [], set: [undefined, undefined, undefined, "6"] });
    expect(page(await ask(bob, get("", "", "<after>i6</after>")))).toEqual({ ids: [], set: [undefined, undefined, undefined, "6"] });
    expect(conditionOf(await ask(bob, get("", "", "<after>gone</after>")))).toBe("item-not-found");
    expect(conditionOf(await ask(bob, get("", "", "<max>many</max>")))).toBe("bad-request");
  });

  it("answers resource-constraint for an item that alone is larger than a stanza may be", async () => {
    const xml = `<picture xmlns='urn:example:picture'>${"7".repeat(BUDGET)}</picture>`;
    await h.store.publishPepItem(ALICE, NODE, { id: "huge", xml, published: new Date() }, 10);
    const answer = await ask(bob, get());
    expect(answer.attrs.type).toBe("error");
    expect(conditionOf(answer)).toBe("resource-constraint");
    // The items before it are still there to page through.
    expect(page(await ask(bob, get("", "", "<max>3</max><before>huge</before>")))).toEqual({ ids: ["i4", "i5", "i6"], set: ["i4", "3", "i6", "7"] });
  });
});
