// XEP-0313 paging through a large archive, through the module (the sm's
// iq handling, XEP-0059 paging and <fin/>), on SQLite and on MariaDB: 10,000
// messages appended in bulk, then read page by page both ways.
import { afterEach, describe, expect, it } from "vitest";
import { MAM_OPTIONS } from "../sm/mod-mam.js";
import { MariaDb } from "../sim/mariadb.js";
import { openStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";
import { DOMAIN, Harness, type Client } from "./sm-harness.js";

const NS = "urn:xmpp:mam:2";
const N = 10_000;
const alice = `alice@${DOMAIN}`;

/** One page: the archived messages' ids (m0…) in order, and the <fin/>'s complete, first and last. */
async function page(c: Client, set: string): Promise<{ ids: string[]; complete: boolean; first?: string; last?: string; count?: string }> {
  const stanzas = await c.request(`<iq type='set' id='q'><query xmlns='${NS}'><set xmlns='http://jabber.org/protocol/rsm'>${set}</set></query></iq>`);
  const fin = stanzas.at(-1)!.getChild("fin", NS)!;
  const rsm = fin.getChild("set")!;
  return {
    ids: stanzas.slice(0, -1).map((m) => m.getChild("result", NS)!.getChild("forwarded")!.getChild("message")!.attrs.id as string),
    complete: fin.attrs.complete === "true",
    first: rsm.getChildText("first") ?? undefined,
    last: rsm.getChildText("last") ?? undefined,
    count: rsm.getChildText("count") ?? undefined,
  };
}

/** Fills alice's archive in bulk, then pages all of it forward and all of it backward through her client. */
async function pagesAll(h: Harness): Promise<void> {
  const base = Date.parse("2026-01-01T00:00:00Z");
  const items = Array.from({ length: N }, (_, i) => ({
    // Ten to a millisecond: ties are ordered by when they were appended.
    stamp: new Date(base + Math.floor(i / 10)),
    with: `bob@${DOMAIN}`,
    xml: `<message xmlns='jabber:client' from='${alice}/a' to='bob@${DOMAIN}' type='chat' id='m${i}'><body>${i}</body></message>`,
  }));
  for (let i = 0; i < N; i += 1000) await h.store.appendArchive(alice, "mam", items.slice(i, i + 1000));
  const a = await h.connect(`${alice}/a`);
  await a.online();
  const max = MAM_OPTIONS.max_page.default;
  const expected = items.map((_, i) => `m${i}`);

  const forward: string[] = [];
  let after = "";
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(N / max);
    const p = await page(a, `<max>${max}</max>${after}`);
    expect(p.count).toBe(String(N));
    forward.push(...p.ids);
    if (p.complete) break;
    after = `<after>${p.last}</after>`;
  }
  expect(forward).toEqual(expected);

  const backward: string[] = [];
  let before = "<before/>";
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(N / max);
    const p = await page(a, `<max>${max}</max>${before}`);
    backward.unshift(...p.ids);
    if (p.complete) break;
    before = `<before>${p.first}</before>`;
  }
  expect(backward).toEqual(expected);
}

describe("sm message archive management, paging 10,000 messages", () => {
  let h: Harness | undefined;
  let mariadb: MariaDb | undefined;
  afterEach(async () => {
    await h?.close();
    await mariadb?.stop();
    h = mariadb = undefined;
  });

  it("on SQLite", async () => {
    h = await Harness.create(["alice", "bob"]);
    await pagesAll(h);
  }, 120_000);

  it.runIf(MariaDb.available())(
    "on MariaDB",
    async () => {
      mariadb = await MariaDb.start();
      const store: Store = await openStore(await mariadb.createDatabase("xfarm_mam_paging"));
      h = await Harness.create(["alice", "bob"], { store });
      await pagesAll(h);
    },
    180_000,
  );
});
