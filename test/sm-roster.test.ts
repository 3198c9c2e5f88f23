// RFC 6121 §2: roster get, set, remove, pushes and validation.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const ROSTER = "jabber:iq:roster";

function items(iq: Element): Record<string, string | string[]>[] {
  return iq
    .getChild("query", ROSTER)!
    .getChildren("item")
    .map((i) => ({ ...i.attrs, groups: i.getChildren("group").map((g) => g.getText()) }));
}

const get = (id = "get") => `<iq type='get' id='${id}'><query xmlns='${ROSTER}'/></iq>`;
const set = (item: string, id = "set") => `<iq type='set' id='${id}'><query xmlns='${ROSTER}'>${item}</query></iq>`;

describe("sm roster", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function interested(jid: string): Promise<Client> {
    const c = await h.connect(jid);
    await c.request(get());
    return c;
  }

  it("adds, updates and removes items, pushing each change to every interested resource", async () => {
    h = await Harness.create(["alice"]);
    const a = await interested(`alice@${DOMAIN}/a`);
    const b = await interested(`alice@${DOMAIN}/b`);
    const quiet = await h.connect(`alice@${DOMAIN}/quiet`); // never asked for the roster

    const first = await a.request(get());
    expect(first).toHaveLength(1);
    expect(first[0]!.attrs).toMatchObject({ type: "result", id: "get" });
    expect(items(first[0]!)).toEqual([]);

    const added = await a.request(
      set(`<item jid='Bob@${DOMAIN}' name='Bob'><group>Friends</group><group>Work</group></item>`),
    );
    const push = added.find((s) => s.attrs.type === "set")!;
    expect(push.attrs.to).toBe(a.jid);
    expect(items(push)).toEqual([
      { jid: `bob@${DOMAIN}`, name: "Bob", subscription: "none", groups: ["Friends", "Work"] },
    ]);
    expect(added.find((s) => s.attrs.type === "result")!.attrs.id).toBe("set");
    const other = b.received();
    expect(other).toHaveLength(1);
    expect(other[0]!.attrs.to).toBe(b.jid);
    expect(items(other[0]!)).toEqual(items(push));
    expect(quiet.received()).toEqual([]);

    await a.request(set(`<item jid='bob@${DOMAIN}' name='Robert'/>`));
    expect(items(b.received()[0]!)).toEqual([{ jid: `bob@${DOMAIN}`, name: "Robert", subscription: "none", groups: [] }]);
    const roster = await a.request(get());
    expect(items(roster[0]!)).toEqual([{ jid: `bob@${DOMAIN}`, name: "Robert", subscription: "none", groups: [] }]);

    const removed = await a.request(set(`<item jid='bob@${DOMAIN}' subscription='remove'/>`, "rm"));
    expect(items(removed.find((s) => s.attrs.type === "set")!)).toEqual([
      { jid: `bob@${DOMAIN}`, subscription: "remove", groups: [] },
    ]);
    expect(removed.find((s) => s.attrs.type === "result")!.attrs.id).toBe("rm");
    expect(b.received()).toHaveLength(1);
    expect(await h.store.getRoster(`alice@${DOMAIN}`)).toEqual([]);
  });

  it("cancels both directions of a subscription when an item is removed", async () => {
    h = await Harness.create(["alice", "bob"]);
    await h.mutual("alice", "bob");
    const alice = await interested(`alice@${DOMAIN}/a`);
    await alice.online();
    const bob = await interested(`bob@${DOMAIN}/b`);
    await bob.online();
    alice.received();

    await alice.request(set(`<item jid='bob@${DOMAIN}' subscription='remove'/>`));
    const got = bob.received();
    const presences = got.filter((s) => s.name === "presence").map((p) => [p.attrs.type, p.attrs.from]);
    expect(presences).toEqual(
      expect.arrayContaining([
        ["unsubscribe", `alice@${DOMAIN}`],
        ["unsubscribed", `alice@${DOMAIN}`],
        ["unavailable", alice.jid],
      ]),
    );
    // bob's roster loses one direction per stanza, each change pushed to him.
    const pushes = got.filter((s) => s.name === "iq").map((iq) => items(iq)[0]!.subscription);
    expect(pushes).toEqual(["to", "none"]);
    expect(await h.store.getRosterItem(`bob@${DOMAIN}`, `alice@${DOMAIN}`)).toMatchObject({ subscription: "none" });
  });

  it("answers bad roster sets with the RFC's errors", async () => {
    h = await Harness.create(["alice"]);
    const a = await interested(`alice@${DOMAIN}/a`);
    const cases: [string, string][] = [
      [set(`<item jid='b@${DOMAIN}'/><item jid='c@${DOMAIN}'/>`), "bad-request"],
      [set(`<item jid='b@${DOMAIN}' subscription='sideways'/>`), "bad-request"],
      [set(`<item jid='b@${DOMAIN}' name='${"x".repeat(2000)}'/>`), "not-acceptable"],
      [set(`<item jid='b@${DOMAIN}'><group></group></item>`), "not-acceptable"],
      [set(`<item jid='b@${DOMAIN}'><group>G</group><group>G</group></item>`), "bad-request"],
      [set(`<item jid='b@${DOMAIN}' subscription='remove'/>`), "item-not-found"],
      [set(`<item jid='alice@${DOMAIN}'/>`), "not-allowed"],
      // A valid JID (RFC 7622 allows 2047 bytes bare) too long for the roster's key.
      [set(`<item jid='${"l".repeat(1000)}@${"d".repeat(60)}${".e".repeat(300)}'/>`), "not-acceptable"],
    ];
    for (const [xml, condition] of cases) {
      const answer = await a.request(xml);
      expect(answer).toHaveLength(1);
      expect(answer[0]!.attrs).toMatchObject({ type: "error", id: "set" });
      expect(conditionOf(answer[0]!)).toBe(condition);
    }
    expect(await h.store.getRoster(`alice@${DOMAIN}`)).toEqual([]);
  });

  it("answers an up-to-date roster version with an empty result (RFC 6121 §2.6, once XEP-0237)", async () => {
    h = await Harness.create(["alice"]);
    const a = await h.connect(`alice@${DOMAIN}/a`);
    const first = (await a.request(`<iq type='get' id='v'><query xmlns='${ROSTER}' ver=''/></iq>`))[0]!;
    const ver = first.getChild("query")!.attrs.ver as string;
    expect(ver).toBeTruthy();
    const same = (await a.request(`<iq type='get' id='v2'><query xmlns='${ROSTER}' ver='${ver}'/></iq>`))[0]!;
    expect(same.attrs.type).toBe("result");
    expect(same.getChildElements()).toEqual([]);

    const changed = await a.request(set(`<item jid='bob@${DOMAIN}'/>`));
    const pushVer = changed.find((s) => s.attrs.type === "set")!.getChild("query")!.attrs.ver as string;
    expect(pushVer).toBeTruthy();
    expect(pushVer).not.toBe(ver);
    const now = (await a.request(`<iq type='get' id='v3'><query xmlns='${ROSTER}' ver='${pushVer}'/></iq>`))[0]!;
    expect(now.getChildElements()).toEqual([]);
  });
});
