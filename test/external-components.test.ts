// The XEP-0114 listener alone (router/external-components.ts), with a route
// that fails as a router bug would: the failure costs that component its
// stream, and the listener goes on serving the others.
import { createHash } from "node:crypto";
import type net from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, xmlLimits } from "../lib/config.js";
import { listenExternalComponents } from "../router/external-components.js";
import { RawStream } from "./harness/raw-stream.js";

const SECRETS = new Map([["bot.localhost", "bot-secret"]]);

async function connected(port: number): Promise<RawStream> {
  const s = await RawStream.connect(port, "127.0.0.2");
  s.send(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='bot.localhost'>`);
  const id = /id='([0-9a-f]+)'/.exec(await s.until(/id='([0-9a-f]+)'/))![1]!;
  s.send(`<handshake>${createHash("sha1").update(id + SECRETS.get("bot.localhost")).digest("hex")}</handshake>`);
  await s.until(/<handshake\/>/);
  return s;
}

describe("the XEP-0114 listener", () => {
  let server: net.Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = null;
  });

  it("ends the stream of a component whose stanza the router fails to route, and serves the next", async () => {
    const config = loadConfig(null, {});
    const attached = new Set<string>();
    const routed: string[] = [];
    server = await listenExternalComponents({
      host: "127.0.0.1",
      port: 0,
      secretOf: (domain) => SECRETS.get(domain),
      limits: { unauthenticated: xmlLimits(config.xml, 10240), authenticated: xmlLimits(config.xml, 65536) },
      maxUnread: config.link.high_water,
      log: pino({ level: "silent" }),
      attach: (domain) => (attached.has(domain) ? false : (attached.add(domain), true)),
      detach: (domain) => void attached.delete(domain),
      route: (_domain, stanza) => {
        if (stanza.attrs.id === "boom") throw new TypeError("a bug in routing");
        routed.push(stanza.attrs.id as string);
      },
    });
    const port = (server.address() as net.AddressInfo).port;
    const first = await connected(port);
    first.send("<message from='bot.localhost' to='u1@localhost' id='boom'/>");
    expect(await first.untilClosed()).toMatch(/<stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    // Detached when its stream ended, so the same component can connect again at once.
    const second = await connected(port);
    second.send("<message from='bot.localhost' to='u1@localhost' id='fine'/>");
    second.send("<iq type='get' id='probe' from='bot.localhost' to='u1@localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await expect.poll(() => routed, { timeout: 10_000 }).toEqual(["fine", "probe"]);
    second.destroy();
  });
});
