// Clients that reach the farm through a list of addresses, as a client
// walks the SRV records of its domain (or the A records of a name), for the
// drain tests: what each does when a front end sends it away or dies.
//
// - listXmppjs: xmpp.js, XEP-0198 on; with `follow` it follows
//   <see-other-host/> as xmpp.js does, without it it treats the redirect as a
//   lost connection (Conversations, Gajim, Smack); either way a lost
//   connection is retried at the next address of its list, and resumed.
// - ListClient: a raw stream without XEP-0198 that does not follow
//   redirects (libstrophe, Profanity): on any lost stream it tries its list
//   in order and logs in again.
// Both count the messages they get by id.
import { client, xml, type Client } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { HEADER, secureStream, type RawStream } from "./raw-stream.js";

export interface Counted {
  /** How many times each message id arrived. */
  received: Map<string, number>;
  /** Logins after the first: a session begun anew (not resumed). */
  relogins: number;
  /** XEP-0198 resumptions. */
  resumes: number;
  /** The port of the front end it is logged in on now; null between connections. */
  port(): number | null;
  stop(): Promise<void>;
}

const count = (received: Map<string, number>, id: string) => received.set(id, (received.get(id) ?? 0) + 1);

export interface ListXmppjs extends Counted {
  xmpp: Client;
}

/** An xmpp.js client on `ports` (tried in turn on each reconnect), logged in and available. */
export async function listXmppjs(opts: { ports: number[]; username: string; password: string; follow: boolean }): Promise<ListXmppjs> {
  const services = opts.ports.map((p) => `xmpp://127.0.0.1:${p}`);
  let next = 0;
  const xmpp = client({ service: services[0], domain: "localhost", username: opts.username, password: opts.password, resource: "r" });
  // As in harness/xmppjs.ts: two shared cores must not fail a login by timing.
  xmpp.timeout = 6000;
  if (!opts.follow) {
    // Treated as any stream error: the connection ends and the client reconnects by itself.
    (xmpp as unknown as { _onSeeOtherHost: () => void })._onSeeOtherHost = () => {};
  }
  // Each reconnection (xmpp.js's reconnect module, a second later) goes to the next address of the list.
  xmpp.on("disconnect", () => {
    next = (next + 1) % services.length;
    xmpp.options.service = services[next]!;
  });
  const c: ListXmppjs = {
    xmpp,
    received: new Map(),
    relogins: -1,
    resumes: 0,
    port: () => (xmpp.status === "online" ? (xmpp.socket?.socket.remotePort ?? null) : null),
    async stop() {
      xmpp.reconnect.stop();
      await xmpp.stop().catch(() => {});
    },
  };
  xmpp.on("stanza", (el: Element) => {
    if (el.is("message") && el.attrs.id) count(c.received, el.attrs.id as string);
  });
  // A session begun anew (the first, or after a resumption failed) is made available, so offline messages come.
  xmpp.on("online", () => {
    c.relogins++;
    void xmpp.send(xml("presence")).catch(() => {});
  });
  xmpp.streamManagement.on("resumed", () => c.resumes++);
  xmpp.on("error", () => {});
  await xmpp.start();
  return c;
}

/** A raw client without XEP-0198 that does not follow redirects: it reconnects through its list in order and logs in again. */
export class ListClient implements Counted {
  readonly received = new Map<string, number>();
  relogins = -1;
  readonly resumes = 0;
  private stream: RawStream | null = null;
  private current: number | null = null;
  private stopped = false;

  constructor(
    private readonly ports: number[],
    private readonly user: string,
    private readonly password: string,
  ) {}

  port(): number | null {
    return this.current;
  }

  /** Resolves once logged in the first time. */
  async start(): Promise<void> {
    const s = await this.login();
    void this.serve(s);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.destroy();
  }

  /** Walks the list until one front end logs it in; all refused, it walks it again. */
  private async login(): Promise<RawStream> {
    for (;;) {
      for (const port of this.ports) {
        if (this.stopped) throw new Error("stopped");
        const s = await this.loginAt(port).catch(() => null);
        if (s) return s;
      }
      // Every address refused it (a front end restarting): a moment, as a client's reconnect timer.
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async loginAt(port: number): Promise<RawStream> {
    const s = await secureStream(port);
    this.stream = s;
    try {
      s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${this.user}\0${this.password}`).toString("base64")}</auth>`);
      await s.until(/<success/);
      s.send(HEADER());
      // A see-other-host here closes the stream: not followed, the next address is tried.
      await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
      s.send("<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
      await s.until(/<jid>[^<]+<\/jid>/);
      s.send("<presence/>");
    } catch (err) {
      s.destroy();
      throw err;
    }
    this.current = port;
    this.relogins++;
    return s;
  }

  /** Counts messages until the stream is lost, then logs in again elsewhere. */
  private async serve(s: RawStream): Promise<void> {
    const scan = () => {
      let consumed = 0;
      for (const m of s.received.matchAll(/<message\b[^>]*?\bid=(['"])([^'"]+)\1[^>]*>[\s\S]*?<\/message>/g)) {
        count(this.received, m[2]!);
        consumed = m.index + m[0].length;
      }
      if (consumed > 0) s.received = s.received.slice(consumed);
      return false;
    };
    // Never matches: it returns (by throwing) when the stream closes.
    await s.until(scan, 24 * 3600_000).catch(() => {});
    this.current = null;
    if (this.stopped) return;
    const again = await this.login().catch(() => null);
    if (again) void this.serve(again);
  }
}
