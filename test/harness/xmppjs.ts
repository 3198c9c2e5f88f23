// Real clients for tests: xmpp.js (@xmpp/client), as an application uses it.
import { client, xml, type Client } from "@xmpp/client";
import type { Element } from "@xmpp/xml";

export { xml };

export interface TestClient {
  xmpp: Client;
  jid: string;
  stanzas: Element[];
  /** Resolves with the next received stanza that passes `test` (or one already received). */
  next(test: (el: Element) => boolean, timeoutMs?: number): Promise<Element>;
  stop(): Promise<void>;
}

export async function connectClient(opts: {
  port: number;
  username: string;
  password: string;
  resource?: string;
  tls?: boolean;
  /** Let xmpp.js reconnect (and resume, with XEP-0198) after a drop. */
  reconnect?: boolean;
}): Promise<TestClient> {
  const xmpp = client({
    service: `${opts.tls ? "xmpps" : "xmpp"}://127.0.0.1:${opts.port}`,
    domain: "localhost",
    username: opts.username,
    password: opts.password,
    resource: opts.resource,
  });
  // xmpp.js gives a stream 2 s to open: too short on two cores shared with
  // the simulator's load tests, and a timing must not fail a test.
  xmpp.timeout = 6000;
  // Tests decide when to reconnect; a failed login must fail the test.
  if (!opts.reconnect) xmpp.reconnect.stop();
  const stanzas: Element[] = [];
  let waiters: { test: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  xmpp.on("stanza", (el: Element) => {
    stanzas.push(el);
    waiters = waiters.filter((w) => (w.test(el) ? (w.resolve(el), false) : true));
  });
  xmpp.on("error", () => {});
  const jid = await xmpp.start();
  return {
    xmpp,
    jid: jid.toString(),
    stanzas,
    next(test, timeoutMs = 10_000) {
      const seen = stanzas.find(test);
      if (seen) {
        stanzas.splice(stanzas.indexOf(seen), 1);
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no matching stanza in time")), timeoutMs);
        waiters.push({
          test,
          resolve: (el) => {
            clearTimeout(timer);
            stanzas.splice(stanzas.indexOf(el), 1);
            resolve(el);
          },
        });
      });
    },
    async stop() {
      await xmpp.stop().catch(() => {});
    },
  };
}
