// XEP-0077 in-band registration from a real client: Debian's slixmpp, over
// STARTTLS, registers an account on a farm with c2s.registration on and
// logs in with it, and is refused a name already taken; on a farm with the
// default config it is offered no registration and cannot log in.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { SlixClient, requireSlixmpp } from "./harness/slixmpp.js";

describe("in-band registration from slixmpp", () => {
  let farm: Farm | undefined;

  beforeAll(() => requireSlixmpp());

  afterEach(async () => {
    await farm?.stop();
    farm?.cleanup();
    farm = undefined;
  });

  const register = (f: Farm, jid: string, password: string) =>
    new SlixClient("slix_register.py", ["--port", String(f.c2sPorts[0]!.port), "--jid", jid, "--password", password, "--ca", process.env.XFARM_TEST_CERT!]);

  it("registers an account and logs in with it; a name taken is refused with conflict", async () => {
    farm = await Farm.create({ c2s: { registration: true } });
    await farm.start();
    await farm.addUser("taken@localhost", "pw");

    const fresh = register(farm, "fresh@localhost/py", "fresh-pw");
    expect((await fresh.next((e) => e.event === "form")).fields).toEqual(["password", "username"]);
    await fresh.next((e) => e.event === "registered");
    expect((await fresh.next((e) => e.event === "session_start")).jid).toBe("fresh@localhost/py");
    expect(await fresh.exited()).toBe(0);
    expect(await farm.waitFor((l) => l.msg === "account registered")).toMatchObject({ proc: "c2s-1", user: "fresh@localhost" });

    const again = register(farm, "taken@localhost/py", "other-pw");
    expect(await again.next((e) => e.event === "register_error")).toMatchObject({ condition: "conflict" });
    expect(await again.exited()).toBe(0);
    expect(again.events.map((e) => e.event)).not.toContain("session_start");
  });

  it("is off by default: nothing is offered, and the account does not come to exist", async () => {
    farm = await Farm.create();
    await farm.start();
    const client = register(farm, "nobody@localhost/py", "pw");
    await client.next((e) => e.event === "failed_auth");
    expect(await client.exited()).toBe(0);
    expect(client.events.map((e) => e.event)).not.toContain("form");
  });
});
