// Where a simulated client (client.ts) connects next: its first port, a
// <see-other-host/> it follows, or, without redirects followed or after a
// drop, the next port of its own list (server.ports), as most clients do.
import type { Scenario } from "./scenario.js";
import type { Recorder } from "./stats.js";
import { firstPort } from "./arrivals.js";
import { connectHost, hostPortKey, loopbackRefusal, parseHostPort } from "./loopback.js";

/** Without redirects followed: after every port refused, wait this long before trying the list again. */
export const RETRY_MS = 1000;
/**
 * Stream errors after which a client that reconnects (does not follow
 * redirects, or session.reconnect) does, as it does when a connection drops:
 * the server going away or busy, not a refusal of the client itself.
 */
export const RECONNECT_ERRORS = new Set(["see-other-host", "system-shutdown", "reset", "internal-server-error", "connection-timeout"]);

export class Route {
  host: string;
  port: number;
  /** With redirects ignored: the index in server.ports of the port in use, and ports tried in a row without a session. */
  private portIndex: number;
  private tries = 0;
  private redirects = 0;

  constructor(
    private readonly sc: Scenario,
    k: number,
  ) {
    this.host = connectHost(sc.server.host);
    this.port = firstPort(sc, k);
    this.portIndex = sc.server.ports.indexOf(this.port);
  }

  /** In session: the counts of a login start afresh. */
  afresh(): void {
    this.redirects = 0;
    this.tries = 0;
  }

  /** <see-other-host/>: null when the client connects again (there, or back to its own port), or why it gives up. */
  redirect(text: string, rec: Recorder): string | null {
    const target = parseHostPort(text, this.port);
    if (!target) return "redirect-unreadable";
    if (loopbackRefusal(target.host)) return "redirect-not-loopback";
    if (++this.redirects > this.sc.session.max_redirects) return "redirect-loop";
    rec.redirect(hostPortKey(target.host, target.port));
    if (this.sc.session.redirects === "ignore") {
      // As a client that does not follow: back to the port it had, then down its list.
      this.tries = 0;
      return null;
    }
    this.host = connectHost(target.host);
    this.port = target.port;
    return null;
  }

  /**
   * A login's connection failed: on to the next port of the client's own
   * list (one that followed a redirect goes back to it). False once every
   * port has failed in a row, and the count starts again.
   */
  next(): boolean {
    const ports = this.sc.server.ports;
    this.host = connectHost(this.sc.server.host);
    this.portIndex = (this.portIndex + 1) % ports.length;
    this.port = ports[this.portIndex]!;
    if (++this.tries < ports.length) return true;
    this.tries = 0;
    return false;
  }
}
