// A local alert webhook for tests: an HTTP server on 127.0.0.1 that keeps
// every JSON body POSTed to it.
import http from "node:http";
import type net from "node:net";

export interface Received {
  event: string;
  child: string;
  role: string;
  reason: string;
  key?: string;
  host: string;
  time: string;
}

export class Webhook {
  readonly received: Received[] = [];
  private waiters: { test: (a: Received) => boolean; resolve: (a: Received) => void }[] = [];

  private constructor(private readonly server: http.Server) {}

  static async listen(): Promise<Webhook> {
    const server = http.createServer();
    const hook = new Webhook(server);
    server.on("request", (req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        res.end();
        hook.add(JSON.parse(body) as Received);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return hook;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}/alerts`;
  }

  private add(alert: Received): void {
    this.received.push(alert);
    this.waiters = this.waiters.filter((w) => (w.test(alert) ? (w.resolve(alert), false) : true));
  }

  /** The first alert (from index `since` on) that passes `test`. */
  waitFor(test: (a: Received) => boolean, since = 0, timeoutMs = 30_000): Promise<Received> {
    const seen = this.received.slice(since).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching alert within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
