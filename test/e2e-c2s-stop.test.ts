// A front end stopped cleanly (SIGTERM, as its supervisor or systemd stops
// it) ends every stream with system-shutdown. A client without XEP-0198
// cannot know what of its last writes was read: the front end reads on until
// the client closes its side and routes its messages, as a drain does. A
// client with XEP-0198 sends again, once logged in anew, what was never
// acknowledged, so nothing is routed for it (it would come twice).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { boundStream, type RawStream } from "./harness/raw-stream.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

describe("a front end stopped under live clients", () => {
  let farm: Farm;
  let receiver: TestClient;
  let marker: TestClient;
  const streams: RawStream[] = [];

  beforeAll(async () => {
    // No balancing redirect: each client stays where it logged in.
    farm = await Farm.create({ c2sCount: 2, c2s: { redirect_margin: 1000 } });
    await farm.start();
    await farm.addUsers("u", 4, "pw", 64);
  }, 90_000);

  afterAll(async () => {
    for (const s of streams) s.destroy();
    await Promise.all([receiver, marker].map((c) => c?.stop()));
    await farm.stop();
    farm.cleanup();
  });

  it("routes what a client without XEP-0198 wrote before it read its system-shutdown, and nothing for one with it", async () => {
    receiver = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u1", password: "pw", resource: "r" });
    marker = await connectClient({ port: farm.c2sPorts[1]!.port, username: "u4", password: "pw", resource: "r" });
    const plain = (await boundStream(farm.c2sPorts[0]!.port, "u2", "pw")).stream;
    const acked = (await boundStream(farm.c2sPorts[0]!.port, "u3", "pw")).stream;
    streams.push(plain, acked);
    acked.send("<enable xmlns='urn:xmpp:sm:3'/>");
    await acked.until(/<enabled /);

    const pid = farm.childPid("c2s-1");
    process.kill(pid, "SIGTERM");
    await Promise.all([plain, acked].map((s) => s.until(/system-shutdown/)));
    // Written before the client read its stream error, as far as the front end can tell.
    acked.send("<message to='u1@localhost/r' id='acked-late' type='chat'><body>sent again after its next login</body></message>");
    acked.send("</stream:stream>");
    plain.send("<message to='u1@localhost/r' id='plain-late' type='chat'><body>written as the server stopped</body></message>");
    plain.send("</stream:stream>");
    for (const s of [plain, acked]) s.end();

    const late = await receiver.next((s) => s.is("message") && s.attrs.id === "plain-late");
    expect(late.attrs.from).toMatch(/^u2@localhost\//);
    expect(late.getChildText("body")).toBe("written as the server stopped");

    // Whatever c2s-1 routed went before it exited; a message sent after its restart comes after it.
    await farm.waitRestarted("c2s-1", pid);
    await marker.xmpp.send(xml("message", { to: "u1@localhost/r", id: "marker", type: "chat" }, xml("body", {}, "after the restart")));
    await receiver.next((s) => s.is("message") && s.attrs.id === "marker");
    expect(receiver.stanzas.filter((s) => s.is("message") && s.attrs.id === "acked-late")).toEqual([]);
    expect(await farm.offlineCount("u1@localhost")).toBe(0);
  });
});
