// XEP-0402 PEP Native Bookmarks and XEP-0084 User Avatar on PEP, through an
// in-process sm: the requests those XEPs' examples make, answered as they
// expect.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ALICE, EVENT, PUBSUB, ask, contacts, events, itemsOf, onlineWithCaps, publishXml } from "./harness/pep.js";
import { Harness, conditionOf } from "./sm-harness.js";

const BOOKMARKS = "urn:xmpp:bookmarks:1";
const AVATAR_DATA = "urn:xmpp:avatar:data";
const AVATAR_METADATA = "urn:xmpp:avatar:metadata";

/** XEP-0402 §3.1's publish-options: what a client asks of the node. */
const BOOKMARK_OPTIONS = {
  "pubsub#persist_items": "true",
  "pubsub#max_items": "max",
  "pubsub#send_last_published_item": "never",
  "pubsub#access_model": "whitelist",
};

const conference = (name: string) => `<conference xmlns='${BOOKMARKS}' name='${name}' autojoin='true'><nick>alice</nick></conference>`;
const getItems = (owner: string, node: string, ids: string[] = []) =>
  `<iq type='get' id='get' to='${owner}'><pubsub xmlns='${PUBSUB}'><items node='${node}'>${ids.map((id) => `<item id='${id}'/>`).join("")}</items></pubsub></iq>`;

describe("XEP-0402 bookmarks and XEP-0084 avatars on the sm's PEP", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("keeps bookmarks as XEP-0402 publishes them: every item, the owner's resources notified, no one else", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await onlineWithCaps(h, bob, [`${BOOKMARKS}+notify`]);
    const phone = await h.connect(`${ALICE}/phone`);
    await onlineWithCaps(h, phone, [`${BOOKMARKS}+notify`]);

    for (const room of ["a@muc.example.com", "b@muc.example.com", "c@muc.example.com"]) {
      const published = await ask(alice, publishXml(BOOKMARKS, conference(room), room, BOOKMARK_OPTIONS));
      expect(published.attrs.type).toBe("result");
    }
    expect((await h.store.getPepNode(ALICE, BOOKMARKS))!.config).toMatchObject(BOOKMARK_OPTIONS);
    // XEP-0402 §3.2: the other resources get each bookmark; a contact never does (whitelist).
    expect(events(phone.received(), BOOKMARKS)).toHaveLength(3);
    expect(events(bob.received(), BOOKMARKS)).toEqual([]);

    // §3.3: all items at once.
    const all = itemsOf(await ask(phone, getItems(ALICE, BOOKMARKS)));
    expect(all.map((i) => i.attrs.id)).toEqual(["a@muc.example.com", "b@muc.example.com", "c@muc.example.com"]);
    expect(all[0]!.getChild("conference", BOOKMARKS)!.attrs.name).toBe("a@muc.example.com");
    expect(conditionOf(await ask(bob, getItems(ALICE, BOOKMARKS)))).toBe("forbidden");

    // §3.4: retracted with notify, the other resources hear of it.
    const retract = `<iq type='set' id='r'><pubsub xmlns='${PUBSUB}'><retract node='${BOOKMARKS}' notify='true'><item id='b@muc.example.com'/></retract></pubsub></iq>`;
    expect((await ask(alice, retract)).attrs.type).toBe("result");
    const [gone] = events(phone.received(), BOOKMARKS);
    expect(gone!.getChild("event", EVENT)!.getChild("items")!.getChild("retract")!.attrs.id).toBe("b@muc.example.com");

    // send_last_published_item never: a resource coming online gets nothing unasked.
    const laptop = await h.connect(`${ALICE}/laptop`);
    expect(events(await onlineWithCaps(h, laptop, [`${BOOKMARKS}+notify`]), BOOKMARKS)).toEqual([]);
  });

  it("serves avatars as XEP-0084 publishes them: a large data item, metadata notified to contacts, data fetched by id", async () => {
    h = await Harness.create(["alice", "bob"]);
    const { alice, bob } = await contacts(h);
    await onlineWithCaps(h, bob, [`${AVATAR_METADATA}+notify`]);
    // 150 kB of image: 200 kB of base64, under sm.max_pep_item_size.
    const image = randomBytes(150_000);
    const id = createHash("sha1").update(image).digest("hex");
    const data = `<data xmlns='${AVATAR_DATA}'>${image.toString("base64")}</data>`;
    expect((await ask(alice, publishXml(AVATAR_DATA, data, id))).attrs.type).toBe("result");
    const info = `<info bytes='${image.length}' id='${id}' height='64' width='64' type='image/png'/>`;
    expect((await ask(alice, publishXml(AVATAR_METADATA, `<metadata xmlns='${AVATAR_METADATA}'>${info}</metadata>`, id))).attrs.type).toBe("result");

    // §4.2: the metadata reaches the contact; the data node, which it did not ask for, does not.
    const got = bob.received();
    expect(events(got, AVATAR_DATA)).toEqual([]);
    const [note] = events(got, AVATAR_METADATA);
    const item = note!.getChild("event", EVENT)!.getChild("items")!.getChild("item")!;
    expect(item.attrs.id).toBe(id);
    expect(item.getChild("metadata", AVATAR_METADATA)!.getChild("info")!.attrs.bytes).toBe(String(image.length));

    // §4.3: the data, asked for by id.
    const [fetched] = itemsOf(await ask(bob, getItems(ALICE, AVATAR_DATA, [id])));
    expect(fetched!.attrs.id).toBe(id);
    const bytes = Buffer.from(fetched!.getChild("data", AVATAR_DATA)!.getText(), "base64");
    expect(createHash("sha1").update(bytes).digest("hex")).toBe(id);
  });
});
