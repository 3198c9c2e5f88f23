// Password changes on a running farm, from xmpp.js: by the admin with
// `xfarm user passwd`, which closes every session of the account with
// `reset`, so that its clients log in again with the new password.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, type TestClient } from "./harness/xmppjs.js";

describe("password change on a running farm", () => {
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
    await farm.addUser("erin@localhost", "erin-old");
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.stop();
    await farm.stop();
    farm.cleanup();
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
});
