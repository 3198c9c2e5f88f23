// A front end's client ports. A draining or full front end closes them, so
// that a client's next connection attempt fails at once and its SRV or DNS
// list takes it to another front end (docs/redirection.md); it opens them
// again, on the same ports, with new servers. So does a front end that knows
// no sm yet (c2s-server.ts): it takes its ports at start, to fail at once if
// they are in use, and closes them until an sm links.
import net from "node:net";
import type { Logger } from "../lib/log.js";
import { listenFailure } from "../lib/process-lifecycle.js";

/** How long a port that another process took meanwhile waits before it is tried again. */
const RELISTEN_RETRY_MS = 1_000;

interface Slot {
  port: number;
  direct: boolean;
  server: net.Server | null;
}

export class ClientListeners {
  private readonly slots: Slot[];
  private accepting = true;
  private retry: NodeJS.Timeout | null = null;
  /** start() is opening the ports: setAccepting only records the wish, which start() applies at its end. */
  private starting = false;

  constructor(
    ports: { port: number; tlsPort: number },
    private readonly host: string | undefined,
    private readonly accept: (socket: net.Socket, direct: boolean) => void,
    private readonly log: Logger,
  ) {
    this.slots = [{ port: ports.port, direct: false, server: null }];
    if (ports.tlsPort) this.slots.push({ port: ports.tlsPort, direct: true, server: null });
  }

  /** Listens on every port; a port that cannot be had fails the start (a StartupFailure when taken or not allowed). Port 0 becomes the port the system chose. */
  async start(): Promise<{ port: number; tlsPort: number }> {
    this.starting = true;
    try {
      await this.listenAll();
    } finally {
      this.starting = false;
    }
    // Closed while they were being opened (a front end restarted mid-drain hears so from the router at once),
    // or to stay closed until the front end can serve.
    if (!this.accepting) {
      for (const slot of this.slots) slot.server?.close();
      for (const slot of this.slots) slot.server = null;
    }
    return { port: this.slots[0]!.port, tlsPort: this.slots[1]?.port ?? 0 };
  }

  private async listenAll(): Promise<void> {
    for (const slot of this.slots) {
      const server = this.newServer(slot);
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(listenFailure(slot.direct ? "c2s.tls_port" : "c2s.port", slot.port, err)));
        server.listen({ port: slot.port, host: this.host, backlog: 1024 }, () => resolve());
      });
      slot.server = server;
      slot.port = (server.address() as net.AddressInfo).port;
    }
  }

  /** Opens or closes the ports; connections already accepted are not touched. */
  setAccepting(accepting: boolean): void {
    if (this.accepting === accepting) return;
    this.accepting = accepting;
    if (this.starting) return;
    if (accepting) return this.listenMissing();
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    for (const slot of this.slots) {
      slot.server?.close();
      slot.server = null;
    }
  }

  /** Closes the ports for good; resolves once they are closed. */
  async close(): Promise<void> {
    const servers = this.slots.map((s) => s.server).filter((s) => s !== null);
    this.accepting = false;
    if (this.retry) clearTimeout(this.retry);
    for (const slot of this.slots) slot.server = null;
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private newServer(slot: Slot): net.Server {
    // A connection that came in while the ports were being closed (at start, before an sm is known) is refused as the closed port would.
    return net.createServer((socket) => (this.accepting ? this.accept(socket, slot.direct) : socket.resetAndDestroy()));
  }

  private listenMissing(): void {
    this.retry = null;
    for (const slot of this.slots) {
      if (slot.server) continue;
      const server = this.newServer(slot);
      slot.server = server;
      server.once("error", (err: NodeJS.ErrnoException) => {
        if (slot.server !== server) return;
        slot.server = null;
        // Another process took the port while it was closed: it is tried again until it is free.
        this.log.warn({ port: slot.port, err: err.code ?? err.message }, "client port not available again yet; retrying");
        if (this.accepting && !this.retry) {
          this.retry = setTimeout(() => this.listenMissing(), RELISTEN_RETRY_MS);
          this.retry.unref();
        }
      });
      server.listen({ port: slot.port, host: this.host, backlog: 1024 }, () => {
        // Closed again before its listen finished.
        if (slot.server !== server) return void server.close();
        this.log.info({ port: slot.port, direct: slot.direct }, "client port open again");
      });
    }
  }
}
