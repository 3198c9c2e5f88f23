// An XEP-0114 external component, as @xmpp/component connects one, served
// by the router: clients reach it by its domain, and it reaches them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { component, xml as cxml, type Component } from "@xmpp/component";
import { Farm } from "./harness/farm.js";
import { connectClient, xml } from "./harness/xmppjs.js";

describe("external components (XEP-0114)", () => {
  let farm: Farm;
  let echo: Component;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 1, smCount: 2, components: { "echo.localhost": "echo-secret" } });
    await farm.start();
    await farm.addUsers("u", 2, "pw", 64);
  });

  afterAll(async () => {
    await echo?.stop().catch(() => {});
    await farm.stop();
    farm.cleanup();
  });

  it("refuses a wrong secret", async () => {
    const bad = component({ service: `xmpp://127.0.0.1:${farm.componentPort}`, domain: "echo.localhost", password: "wrong" });
    bad.reconnect.stop();
    bad.on("error", () => {});
    await expect(bad.start()).rejects.toMatchObject({ condition: "not-authorized" });
  });

  it("receives and answers stanzas from clients on the farm, both ways", async () => {
    echo = component({ service: `xmpp://127.0.0.1:${farm.componentPort}`, domain: "echo.localhost", password: "echo-secret" });
    echo.on("error", () => {});
    echo.on("stanza", (s) => {
      // Echo messages back; answer disco#info like a real service.
      if (s.is("message") && s.getChildText("body")) {
        void echo.send(cxml("message", { from: s.attrs.to, to: s.attrs.from, type: "chat" }, cxml("body", {}, `echo: ${s.getChildText("body")}`)));
      } else if (s.is("iq") && s.attrs.type === "get") {
        void echo.send(
          cxml("iq", { from: s.attrs.to, to: s.attrs.from, id: s.attrs.id, type: "result" }, cxml("query", { xmlns: "http://jabber.org/protocol/disco#info" }, cxml("identity", { category: "component", type: "generic", name: "Echo" }))),
        );
      }
    });
    // The router answers the handshake once it has attached the component: started, it is routed to.
    await echo.start();

    // Two users, so that both sms (rendezvous-hashed) take part.
    for (const name of ["u1", "u2"]) {
      const c = await connectClient({ port: farm.c2sPorts[0]!.port, username: name, password: "pw" });
      await c.xmpp.send(xml("message", { to: "echo.localhost", type: "chat", id: `m-${name}` }, xml("body", {}, `hello from ${name}`)));
      const reply = await c.next((s) => s.is("message") && s.attrs.from === "echo.localhost");
      expect(reply.getChildText("body")).toBe(`echo: hello from ${name}`);
      expect(reply.attrs.to).toBe(c.jid);
      const info = await c.xmpp.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }), "echo.localhost");
      expect(info.getChild("identity")?.attrs.name).toBe("Echo");
      // The server lists the component among its items (XEP-0030), once its sm has the member table that names it.
      const items = async () =>
        (await c.xmpp.iqCaller.get(xml("query", { xmlns: "http://jabber.org/protocol/disco#items" }), "localhost")).getChildren("item").map((i) => i.attrs.jid);
      await expect.poll(items, { timeout: 10_000, interval: 200 }).toEqual(["echo.localhost"]);
      await c.stop();
    }
  });

  it("keeps a component to its own domain, and bounces what it sends nowhere", async () => {
    const replies: string[] = [];
    echo.on("stanza", (s) => {
      if (s.attrs.type === "error") replies.push(s.toString());
    });
    await echo.send(cxml("message", { from: "echo.localhost", to: "someone@elsewhere.example", id: "far" }, cxml("body", {}, "x")));
    await expect.poll(() => replies.join("")).toMatch(/remote-server-not-found/);
    await echo.send(cxml("message", { from: "echo.localhost", to: "nobody@localhost", id: "nobody", type: "chat" }, cxml("body", {}, "x")));
    await expect.poll(() => replies.join("")).toMatch(/id="nobody"[^>]*type="error"|type="error"[^>]*id="nobody"/);
  });
});
