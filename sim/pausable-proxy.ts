// A TCP proxy on loopback that can stop forwarding both ways without closing
// anything, as a network partition does: what is sent meanwhile waits in the
// sockets, and flows again on resume. For the router pair's partition tests.
import net from "node:net";

export class PausableProxy {
  private readonly sockets = new Set<net.Socket>();
  private paused = false;

  private constructor(private readonly server: net.Server) {}

  /** Listens on a free loopback port and forwards every connection to `target`. */
  static listen(target: { host: string; port: number }): Promise<PausableProxy> {
    const server = net.createServer();
    const proxy = new PausableProxy(server);
    server.on("connection", (client) => proxy.forward(client, net.connect(target)));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops forwarding, both ways, on every connection and on those that come meanwhile. */
  pause(): void {
    this.paused = true;
    for (const s of this.sockets) s.pause();
  }

  resume(): void {
    this.paused = false;
    for (const s of this.sockets) s.resume();
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private forward(a: net.Socket, b: net.Socket): void {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      this.sockets.add(from);
      // Not pipe(): its backpressure would resume a socket this proxy paused.
      from.on("data", (chunk: Buffer) => to.write(chunk));
      from.on("close", () => {
        this.sockets.delete(from);
        to.destroy();
      });
      from.on("error", () => {});
      if (this.paused) from.pause();
    }
  }
}
