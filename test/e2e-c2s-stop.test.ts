// A front end stopped cleanly (SIGTERM, as its supervisor or systemd stops
// it) ends every stream. A client without XEP-0198 cannot know what of its
// last writes was read: the front end reads on until the client closes its
// side and routes its messages, as a drain does. A client with XEP-0198
// sends again, once logged in anew, what was never acknowledged, so nothing
// is routed for it (it would come twice). A resumable session is left to its
// sm, and its client sent to another front end, where it resumes it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { boundStream, loggedInStream, type RawStream } from "./harness/raw-stream.js";
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
    await farm.addUsers("u", 5, "pw", 64);
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

  it("leaves a resumable session to the sm, sends its client to the other front end, and the client resumes it there", async () => {
    const NS_SM = "urn:xmpp:sm:3";
    // The restarted c2s-1 takes clients, and knows c2s-2's load (a front end to send them to).
    await farm.waitLinked();
    await farm.waitReporting("c2s-1", 1);
    const { stream: first, jid } = await boundStream(farm.c2sPorts[0]!.port, "u5", "pw");
    streams.push(first);
    first.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const previd = /<enabled [^>]*id=['"]([^'"]+)['"]/.exec(await first.until(/<enabled [^>]*>/))![1]!;

    const pid = farm.childPid("c2s-1");
    process.kill(pid, "SIGTERM");
    await first.until(new RegExp(`<see-other-host[^>]*>[^<]*:${farm.c2sPorts[1]!.port}</see-other-host>`));
    first.end();
    // Meanwhile the session waits at the sm, which keeps what comes for it.
    await receiver.xmpp.send(xml("message", { to: jid, id: "while-moving", type: "chat" }, xml("body", {}, "kept for the resumption")));

    const next = await loggedInStream(farm.c2sPorts[1]!.port, "u5", "pw");
    streams.push(next);
    next.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='0'/>`);
    await next.until(/<resumed [^>]*>/);
    await next.until(/while-moving/);
    expect(next.received).toMatch(/kept for the resumption/);
    expect(next.received).not.toMatch(/<failed /);
    await farm.waitRestarted("c2s-1", pid);
    expect(await farm.offlineCount(jid.split("/")[0]!)).toBe(0);
  });
});
