// Issue 13, H4, on a real farm: answers larger than a link frame. Users on
// two sms ask, from several loopback addresses, for the items of an open
// PEP node holding 6 × 200 KB, and an account with a 12,000-contact roster
// fetches it, while two bystanders chat. Before, the sm sent a frame over
// link.max_frame and the router closed its link, so messaging stopped.
// Now the items come paged (XEP-0060 §6.5.4), the roster is refused with
// resource-constraint, no link is re-established, no process restarted,
// and every bystander message arrives.
import path from "node:path";
import { parse, type Element } from "ltx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusEntry } from "../lib/link/control.js";
import { rendezvousOwner } from "../lib/link/member.js";
import { openStore } from "../xdb-sql/open-store.js";
import { Farm } from "./harness/farm.js";
import { processStats, survivors } from "./harness/processes.js";
import { HEADER, secureStream, type RawStream } from "./harness/raw-stream.js";
import { rosterItem } from "./harness/roster-item.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const PUBSUB = "http://jabber.org/protocol/pubsub";
const RSM = "http://jabber.org/protocol/rsm";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const NODE = "urn:example:gallery";
const ITEM_BYTES = 200_000;
const MESSAGES = 50;
const PROCESSES = ["router-1", "sm-1", "sm-2", "c2s-1", "c2s-2"];

/** Logs in over STARTTLS with PLAIN from a chosen loopback address, and binds. */
async function rawLogin(port: number, user: string, localAddress: string): Promise<RawStream> {
  const s = await secureStream(port, localAddress);
  s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString("base64")}</auth>`);
  await s.until(/<success/);
  s.received = "";
  s.send(HEADER());
  await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
  s.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>");
  await s.until(/<\/jid>/);
  s.received = "";
  return s;
}

/** Sends an iq and returns its answer, parsed; what the stream received is then forgotten. */
async function iq(s: RawStream, id: string, xmlText: string): Promise<Element> {
  s.send(xmlText);
  const answer = new RegExp(`<iq[^>]*\\bid=["']${id}["'][^>]*(/>|>[\\s\\S]*?</iq>)`);
  const text = answer.exec(await s.until(answer))![0];
  s.received = "";
  return parse(text);
}

const itemsGet = (id: string, owner: string, set = "") =>
  `<iq type='get' id='${id}' to='${owner}'><pubsub xmlns='${PUBSUB}'><items node='${NODE}'/>${set ? `<set xmlns='${RSM}'>${set}</set>` : ""}</pubsub></iq>`;

/** The ids of an items result, and its result set as [first, index, last, count]. */
function page(answer: Element): { ids: string[]; set: (string | undefined)[] | undefined } {
  expect(answer.attrs.type).toBe("result");
  const pubsub = answer.getChild("pubsub", PUBSUB)!;
  const set = pubsub.getChild("set", RSM);
  const first = set?.getChild("first");
  return {
    ids: pubsub.getChild("items")!.getChildren("item").map((i) => i.attrs.id as string),
    set: set && [first?.getText(), first?.attrs.index, set.getChildText("last") ?? undefined, set.getChildText("count") ?? undefined],
  };
}

describe("answers larger than a link frame (issue 13, H4)", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const raws: RawStream[] = [];
  // Users that rendezvous hashing puts on each sm: the owner and a requester on sm-1, another requester on sm-2.
  const names = Array.from({ length: 40 }, (_, i) => `u${i + 1}`);
  const onSm = (sm: string, skip = 0) => names.filter((n) => rendezvousOwner(["sm-1", "sm-2"], `${n}@localhost`) === sm)[skip]!;
  const owner = onSm("sm-1");
  const near = onSm("sm-1", 1);
  const far = onSm("sm-2");
  const popular = onSm("sm-2", 1);
  const [talker, listener] = [onSm("sm-1", 2), onSm("sm-2", 2)];
  const ownerJid = `${owner}@localhost`;

  const linkedAt = async (): Promise<Record<string, number>> => {
    const r = await farm.cli("status", "--json");
    expect(r.code).toBe(0);
    const entries = (JSON.parse(r.stdout) as { entries: StatusEntry[] }).entries;
    return Object.fromEntries(entries.filter((e) => e.role === "sm" || e.role === "c2s").map((e) => [e.name, e.linkedAt]));
  };

  beforeAll(async () => {
    // Clients stay on the front end they chose: no balancing redirects here. The owner's 1.2 MB of
    // publishing is set-up, read at once rather than at the default 16 KB/s (the rate limit's own test: e2e-hostile-rates).
    farm = await Farm.create({ c2sCount: 2, smCount: 2, c2s: { redirect_margin: 1000, rate_bytes: 1_048_576 } });
    await farm.start();
    await farm.addUsers("u", 40, "pw", 64);
    // A roster as large as an import may bring: 12,000 contacts, more than a frame holds.
    const store = await openStore(`sqlite:${path.join(farm.dir, "data", "xfarm.db")}`);
    try {
      for (let i = 0; i < 12_000; i++) {
        const contact = `contact-${i}@example.net`;
        await store.putRosterItem(`${popular}@localhost`, rosterItem(contact, { name: `Contact number ${i} of many`, subscription: "both", groups: ["Everyone"] }));
      }
    } finally {
      await store.close();
    }
  }, 120_000);

  afterAll(async () => {
    for (const s of raws) s.destroy();
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("pages the items of a 6 × 200 KB node, refuses the 12,000-contact roster, and loses no link, process or message", async () => {
    const port = (i: number) => farm.c2sPorts[i]!.port;
    // The owner publishes six items of 200 KB to an open node, as a client may.
    const publisher = await connectClient({ port: port(0), username: owner, password: "pw", resource: "pub" });
    clients.push(publisher);
    const options = xml(
      "publish-options",
      {},
      xml(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, `${PUBSUB}#publish-options`)),
        xml("field", { var: "pubsub#access_model" }, xml("value", {}, "open")),
        xml("field", { var: "pubsub#max_items" }, xml("value", {}, "10")),
      ),
    );
    for (let i = 1; i <= 6; i++) {
      const item = xml("item", { id: `i${i}` }, xml("picture", { xmlns: "urn:example:picture" }, String(i).repeat(ITEM_BYTES)));
      await publisher.xmpp.iqCaller.set(xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: NODE }, item), options));
    }

    const talk = await connectClient({ port: port(0), username: talker, password: "pw", resource: "t" });
    const hear = await connectClient({ port: port(1), username: listener, password: "pw", resource: "h" });
    clients.push(talk, hear);
    const before = processStats(farm, PROCESSES);
    const links = await linkedAt();

    // Requesters on both sms, each from its own address, ask again and again while the bystanders chat.
    const attackers = await Promise.all([
      rawLogin(port(0), near, "127.0.0.2"),
      rawLogin(port(1), far, "127.0.0.3"),
    ]);
    raws.push(...attackers);
    const roster = await rawLogin(port(1), popular, "127.0.0.4");
    raws.push(roster);
    const chat = (async () => {
      for (let i = 0; i < MESSAGES; i++) await talk.xmpp.send(xml("message", { to: `${listener}@localhost/h`, type: "chat", id: `m${i}` }, xml("body", {}, `hello ${i}`)));
    })();
    const attacks = attackers.map(async (s, a) => {
      const pages: ReturnType<typeof page>[] = [];
      for (let n = 0; n < 4; n++) pages.push(page(await iq(s, `all${a}-${n}`, itemsGet(`all${a}-${n}`, ownerJid))));
      pages.push(page(await iq(s, `rsm${a}`, itemsGet(`rsm${a}`, ownerJid, "<max>2</max><before>i3</before>"))));
      return pages;
    });
    const rosterAnswers = (async () => {
      const answers: Element[] = [];
      for (let n = 0; n < 3; n++) answers.push(await iq(roster, `roster${n}`, `<iq type='get' id='roster${n}'><query xmlns='jabber:iq:roster'/></iq>`));
      return answers;
    })();

    for (const pages of await Promise.all(attacks)) {
      // The newest items that fit in one stanza, with where they start of how many; then the page before them.
      for (const p of pages.slice(0, 4)) expect(p).toEqual({ ids: ["i3", "i4", "i5", "i6"], set: ["i3", "2", "i6", "6"] });
      expect(pages[4]).toEqual({ ids: ["i1", "i2"], set: ["i1", "0", "i2", "6"] });
    }
    for (const answer of await rosterAnswers) {
      expect(answer.attrs.type).toBe("error");
      const error = answer.getChild("error")!;
      expect(error.getChild("resource-constraint", STANZAS)).toBeTruthy();
      expect(error.getChildText("text", STANZAS)).toMatch(/^the answer \(\d+ bytes\) is larger than this server sends at once \(983040 bytes\)$/);
    }
    await chat;
    for (let i = 0; i < MESSAGES; i++) await hear.next((s) => s.is("message") && s.attrs.id === `m${i}`);

    // Nothing restarted, no link was made again, memory grew within a generous bound.
    const grown = survivors(farm, before);
    for (const [name, kb] of Object.entries(grown)) expect(kb, name).toBeLessThan(256 * 1024);
    expect(await linkedAt()).toEqual(links);
  }, 180_000);
});
