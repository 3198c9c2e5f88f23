// XEP-0012 last activity in the sm: the server's uptime, and an account's
// last activity for those who may see its presence: 0 while online, else
// the time since its last available resource left, with its status.
import { afterEach, describe, expect, it, vi } from "vitest";
import { DOMAIN, Harness, conditionOf, type Client } from "./sm-harness.js";

const NS = "jabber:iq:last";
const query = (to: string) => `<iq type='get' id='l' to='${to}'><query xmlns='${NS}'/></iq>`;

async function last(client: Client, to: string): Promise<{ seconds?: number; text?: string; error?: string }> {
  const [answer] = await client.request(query(to));
  if (answer!.attrs.type === "error") return { error: conditionOf(answer!) };
  const q = answer!.getChild("query", NS)!;
  return { seconds: Number(q.attrs.seconds), text: q.getText() };
}

describe("XEP-0012 last activity", () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("answers the server's uptime, advertised in its disco#info", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const uptime = await last(alice, DOMAIN);
    expect(uptime.seconds).toBeGreaterThanOrEqual(0);
    const [info] = await alice.request(`<iq type='get' id='i' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    expect(info!.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).toContain(NS);
  });

  it("tells a contact who sees the user's presence 0 while online, then since when and why it left", async () => {
    h = await Harness.create(["alice", "bob", "eve"]);
    await h.mutual("alice", "bob");
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    const eve = await h.connect(`eve@${DOMAIN}/e`);
    // Nothing known yet of an account never online, and nothing of one that does not exist.
    expect(await last(alice, `bob@${DOMAIN}`)).toEqual({ error: "service-unavailable" });
    expect(await last(alice, `nobody@${DOMAIN}`)).toEqual({ error: "service-unavailable" });

    const bob = await h.connect(`bob@${DOMAIN}/b`);
    await bob.online();
    expect(await last(alice, `bob@${DOMAIN}`)).toEqual({ seconds: 0, text: "" });
    // Only for those who may see bob's presence, and bob himself.
    expect(await last(eve, `bob@${DOMAIN}`)).toEqual({ error: "forbidden" });
    expect((await last(bob, `bob@${DOMAIN}`)).seconds).toBe(0);

    await bob.send("<presence type='unavailable'><status>gone fishing</status></presence>");
    const after = await last(alice, `bob@${DOMAIN}`);
    expect(after.text).toBe("gone fishing");
    expect(after.seconds).toBeGreaterThanOrEqual(0);
    expect(after.seconds).toBeLessThan(60);

    // Back, then its connection drops without a word: left with no status.
    await bob.online();
    await bob.end();
    expect(await last(alice, `bob@${DOMAIN}`)).toMatchObject({ text: "" });
    // Stored lazily: within a second, its commit shared with other logouts.
    await vi.waitFor(async () => expect(await h.store.getKv(`bob@${DOMAIN}`, "last", "logout")).not.toBeNull(), { timeout: 5000 });
  });

  it("commits a logout not yet stored before the account it belongs to is removed", async () => {
    h = await Harness.create(["alice"]);
    const alice = await h.connect(`alice@${DOMAIN}/a`);
    await alice.online();
    await alice.send("<presence type='unavailable'/>");
    const remove = h.store.deleteAccount.bind(h.store);
    let stored: string | null = null;
    h.store.deleteAccount = async (user) => {
      stored = await h.store.getKv(user, "last", "logout");
      return remove(user);
    };
    await h.sm.deleteUser(`alice@${DOMAIN}`, true);
    expect(stored).not.toBeNull();
    expect(await h.store.accountExists(`alice@${DOMAIN}`)).toBe(false);
  });
});
