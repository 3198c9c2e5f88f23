// Password changes on a running farm, from xmpp.js: by the user with XEP-0077
// (the other resources are closed with `reset`, the one that asked stays),
// by the admin with `xfarm user passwd` (every session is closed), and the
// account removed by its user (the result arrives before the stream closes).
import type { Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const NS = "jabber:iq:register";

describe("password change and account removal on a running farm", () => {
  let farm: Farm;
  const clients: TestClient[] = [];

  /** Logs in on front end `front` (0 or 1); the client is stopped after the tests. */
  async function login(username: string, password: string, resource: string, front = 0): Promise<TestClient> {
    const c = await connectClient({ port: farm.c2sPorts[front]!.port, username, password, resource });
    clients.push(c);
    return c;
  }

  /** Resolves with the stream error that closes `c`. */
  function closedWith(c: TestClient): Promise<string | undefined> {
    return new Promise((resolve) => c.xmpp.on("error", (e) => resolve((e as { condition?: string }).condition)));
  }

  async function refused(username: string, password: string): Promise<void> {
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username, password })).rejects.toMatchObject({ condition: "not-authorized" });
  }

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    for (const user of ["dave", "erin", "fay"]) await farm.addUser(`${user}@localhost`, `${user}-old`);
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.stop();
    await farm.stop();
    farm.cleanup();
  });

  it("XEP-0077: the user's new password logs in, the old one not; the other resource is closed, this one kept", async () => {
    const d1 = await login("dave", "dave-old", "d1", 0);
    const d2 = await login("dave", "dave-old", "d2", 1);
    const d2Closed = closedWith(d2);
    const form = await d1.xmpp.iqCaller.get(xml("query", { xmlns: NS }), "localhost");
    // xmpp.js hands back the result's payload.
    expect(form.getChildText("username")).toBe("dave");
    await d1.xmpp.iqCaller.set(xml("query", { xmlns: NS }, xml("username", {}, "dave"), xml("password", {}, "dave-new")), "localhost");
    expect(await d2Closed).toBe("reset");
    await refused("dave", "dave-old");
    await login("dave", "dave-new", "d3", 1);
    // d1 is still served.
    await d1.xmpp.iqCaller.get(xml("ping", { xmlns: "urn:xmpp:ping" }), "localhost");
  });

  it("xfarm user passwd ends the account's sessions on the running farm and says so", async () => {
    const e1 = await login("erin", "erin-old", "e1", 0);
    const e2 = await login("erin", "erin-old", "e2", 1);
    const closed = [closedWith(e1), closedWith(e2)];
    expect(await farm.cli("user", "passwd", "erin@localhost", "erin-new")).toMatchObject({
      code: 0,
      stdout: "password changed for erin@localhost\nits sessions on the running farm were ended\n",
    });
    expect(await Promise.all(closed)).toEqual(["reset", "reset"]);
    await refused("erin", "erin-old");
    await login("erin", "erin-new", "e3", 0);
  });

  it("XEP-0077 removal: the result arrives, then the stream closes, and the account is gone", async () => {
    const f1 = await login("fay", "fay-old", "f1", 0);
    const events: string[] = [];
    const closed = new Promise<void>((resolve) =>
      f1.xmpp.on("error", (e) => {
        events.push(`closed ${(e as { condition?: string }).condition}`);
        resolve();
      }),
    );
    f1.xmpp.on("stanza", (s: Element) => {
      if (s.is("iq") && s.attrs.id === "rm") events.push(`iq ${s.attrs.type}`);
    });
    await f1.xmpp.send(xml("iq", { type: "set", id: "rm" }, xml("query", { xmlns: NS }, xml("remove"))));
    await closed;
    expect(events).toEqual(["iq result", "closed not-authorized"]);
    await refused("fay", "fay-old");
    expect((await farm.cli("user", "list")).stdout.split("\n")).not.toContain("fay@localhost");
  });
});
