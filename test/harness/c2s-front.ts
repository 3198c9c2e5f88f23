// A front end's context (C2sContext, with its real balancer, SQLite store and
// TLS certificate) and no farm: the link to the router is a stand-in that
// records what connections send, and a test answers as the sm would
// (c2s/session-frames.ts's dispatch). Clients reach it over loopback sockets
// (client-connection.test.ts) or over sockets in memory (MemoryFront).
import { EventEmitter } from "node:events";
import type net from "node:net";
import pino from "pino";
import { configDefaults } from "../../lib/config.js";
import type { LinkClientEvents } from "../../lib/link/link-client.js";
import { SessionOp, decodeSessionPayload, type SessionMessage } from "../../lib/link/session-payload.js";
import { deriveCredentials } from "../../lib/sasl/scram-credentials.js";
import { TlsCredentials } from "../../lib/tls-credentials.js";
import { Balancer } from "../../c2s/balancer.js";
import { C2sContext, type C2sLink } from "../../c2s/c2s-context.js";
import { addressKey } from "../../c2s/client-address.js";
import { ClientConnection } from "../../c2s/client-connection.js";
import { openStore } from "../../xdb-sql/open-store.js";
import type { Store } from "../../xdb-sql/store.js";
import { socketPair } from "./memory-socket.js";
import { RawStream } from "./raw-stream.js";

export type C2sOverrides = Partial<ReturnType<typeof configDefaults>["c2s"]>;

/** Binding the resource r (RFC 6120 §7). */
export const BIND = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>";

/** The router link as the connection sees it: up, never congested, one sm; every frame kept. */
export class RecordingLink extends EventEmitter<LinkClientEvents> implements C2sLink {
  connected = true;
  congested = false;
  readonly frames: { to: string; key: string; msg: SessionMessage }[] = [];
  private waiters: (() => void)[] = [];

  send(to: string, key: string, payload: Buffer): boolean {
    this.frames.push({ to, key, msg: decodeSessionPayload(payload) });
    for (const w of this.waiters.splice(0)) w();
    return true;
  }

  sendControl(): void {}

  smOwnerOf(): string | undefined {
    return "sm-1";
  }

  /** The first frame of `op` not taken yet (waiting for it), taken. */
  async next<K extends SessionOp>(op: K): Promise<Extract<SessionMessage, { op: K }> & { key: string; to: string }> {
    for (;;) {
      const i = this.frames.findIndex((f) => f.msg.op === op);
      if (i >= 0) {
        const [f] = this.frames.splice(i, 1);
        return { ...(f!.msg as Extract<SessionMessage, { op: K }>), key: f!.key, to: f!.to };
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

/** A front end's context named c2s-1 serving localhost, with the account u1@localhost (password pw). */
export async function frontContext(c2s: C2sOverrides = {}): Promise<{ ctx: C2sContext; link: RecordingLink; store: Store }> {
  const config = configDefaults();
  config.domains = ["localhost"];
  config.c2s = { ...config.c2s, name: "c2s-1", tls_cert: process.env.XFARM_TEST_CERT!, tls_key: process.env.XFARM_TEST_KEY!, scram_iterations: 4096, ...c2s };
  const log = pino({ level: "silent" });
  const store = await openStore("sqlite::memory:");
  await store.createAccount("u1@localhost", await deriveCredentials("pw", 4096));
  const link = new RecordingLink();
  const balancer = new Balancer({ name: "c2s-1", weight: 1, capacity: 1000, margin: 0.1, floor: 200, memorySeconds: 120, maxLag: 500 });
  const ctx = new C2sContext({ ...config.c2s, domains: config.domains, xml: config.xml }, store, link, await TlsCredentials.load(config, log), balancer, log);
  return { ctx, link, store };
}

/** A front end whose clients connect over sockets in memory. */
export class MemoryFront {
  private readonly streams: RawStream[] = [];

  private constructor(
    readonly ctx: C2sContext,
    readonly link: RecordingLink,
    readonly store: Store,
  ) {}

  static async open(c2s: C2sOverrides = {}): Promise<MemoryFront> {
    const { ctx, link, store } = await frontContext(c2s);
    return new MemoryFront(ctx, link, store);
  }

  /**
   * A client, let in through the gate as c2s-server.ts lets one in, and its
   * connection. The connection uses of net.Socket only what a Duplex has,
   * and the remote address.
   */
  connect(direct = false): { stream: RawStream; conn: ClientConnection } {
    const [client, server] = socketPair();
    const refused = this.ctx.gate.enter(addressKey(server.remoteAddress), this.ctx.sockets);
    if (refused) throw new Error(`the gate refused the client: ${refused}`);
    const conn = new ClientConnection(this.ctx, server as unknown as net.Socket, direct);
    const stream = RawStream.over(client);
    this.streams.push(stream);
    return { stream, conn };
  }

  /** u1/r logged in with PLAIN over a clear stream and bound, the test answering START as the sm does; what came before is cleared. */
  async bound(): Promise<{ stream: RawStream; conn: ClientConnection }> {
    const { stream, conn } = this.connect();
    await stream.login({ security: "none", mechanism: "PLAIN", username: "u1", password: "pw", until: "authenticated" });
    stream.send(BIND);
    await this.link.next(SessionOp.Start);
    conn.bound("u1@localhost/r", "sm-1/1");
    await stream.until(/<\/jid><\/bind><\/iq>/);
    stream.received = "";
    return { stream, conn };
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.destroy();
    await this.ctx.shutdown(0);
    await this.store.close();
  }
}
