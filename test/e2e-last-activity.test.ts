// XEP-0012 last activity against the whole farm, asked from two real client
// libraries: xmpp.js, and slixmpp's xep_0012 plugin. A contact who sees a
// user's presence learns 0 while the user is online, and after it left,
// since when and with what status; anyone learns the server's uptime.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { mutualInStore } from "./harness/roster-item.js";
import { PYTHON, requireSlixmpp } from "./harness/slixmpp.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const NS = "jabber:iq:last";
const SCRIPT = fileURLToPath(new URL("./interop/slix_client.py", import.meta.url));
const run = promisify(execFile);

describe("XEP-0012 last activity from real clients", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const login = async (username: string, resource: string) => {
    const c = await connectClient({ port: farm.c2sPorts[0]!.port, username, password: `${username}-pw`, resource });
    clients.push(c);
    return c;
  };
  /** ben goes unavailable with a status, and ann, who sees his presence, has seen it go. */
  const benLeaves = async (ann: TestClient, status: string) => {
    const ben = await login("ben", "desk");
    await ben.xmpp.send(xml("presence"));
    await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/desk" && !s.attrs.type);
    await ben.xmpp.send(xml("presence", { type: "unavailable" }, xml("status", {}, status)));
    await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/desk" && s.attrs.type === "unavailable");
    await ben.stop();
  };

  beforeAll(async () => {
    requireSlixmpp();
    farm = await Farm.create({ c2sCount: 1 });
    await farm.start();
    await farm.addAccounts({ "ann@localhost": "ann-pw", "ben@localhost": "ben-pw", "sly@localhost": "sly-pw" });
    await mutualInStore(farm.storeUrl, [
      ["ann@localhost", "ben@localhost"],
      ["sly@localhost", "ben@localhost"],
    ]);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("xmpp.js asks the server's uptime and a contact's last activity", async () => {
    const ann = await login("ann", "web");
    await ann.xmpp.send(xml("presence"));
    const uptime = await ann.xmpp.iqCaller.get(xml("query", { xmlns: NS }), "localhost");
    expect(Number(uptime.attrs.seconds)).toBeGreaterThanOrEqual(0);

    const ben = await login("ben", "phone");
    await ben.xmpp.send(xml("presence"));
    await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/phone" && !s.attrs.type);
    const online = await ann.xmpp.iqCaller.get(xml("query", { xmlns: NS }), "ben@localhost");
    expect(online.attrs.seconds).toBe("0");
    await ben.stop();
    await ann.next((s) => s.is("presence") && s.attrs.from === "ben@localhost/phone" && s.attrs.type === "unavailable");

    await benLeaves(ann, "gone fishing");
    const gone = await ann.xmpp.iqCaller.get(xml("query", { xmlns: NS }), "ben@localhost");
    expect(gone.text()).toBe("gone fishing");
    expect(Number(gone.attrs.seconds)).toBeGreaterThanOrEqual(0);
    await ann.stop();
  });

  it("slixmpp's xep_0012 plugin asks the server's uptime and a contact's last activity", async () => {
    const ann = await login("ann", "observer");
    await ann.xmpp.send(xml("presence"));
    await benLeaves(ann, "at lunch");
    const { stdout } = await run(PYTHON, [SCRIPT, "--port", String(farm.c2sPorts[0]!.port), "--jid", "sly@localhost/py", "--password", "sly-pw", "--peer", "ben@localhost", "--last", "ben@localhost", "--ca", process.env.XFARM_TEST_CERT!]);
    const events = stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, string>);
    expect(events.map((e) => e.event)).toEqual(["uptime", "last", "disconnected"]);
    expect(Number(events[0]!.seconds)).toBeGreaterThanOrEqual(0);
    expect(events[1]).toMatchObject({ status: "at lunch", seconds: expect.stringMatching(/^\d+$/) });
    await ann.stop();
  });
});
