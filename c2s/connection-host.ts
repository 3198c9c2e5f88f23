// What a client connection needs of its front end (C2sContext implements it):
// the registers a connection joins and leaves as its stream goes on, the
// shared limits and throttles, and the parts of the link, store and balancer
// it calls. client-connection.ts depends on this interface, not on the
// context class, which holds the connections: so neither file imports the
// other. `Conn` is the connection type, which the registers hold.
import type net from "node:net";
import type { Config } from "../lib/config.js";
import type { LinkClient } from "../lib/link/link-client.js";
import type { Logger } from "../lib/log.js";
import type { TlsCredentials } from "../lib/tls-credentials.js";
import type { XmlLimits } from "../lib/xml-stream.js";
import type { Store } from "../xdb-sql/store.js";
import type { Balancer } from "./balancer.js";
import type { C2sCounters } from "./c2s-counters.js";
import type { ConnectionGate } from "./connection-gate.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { ReadThrottle, Throttled } from "./read-throttle.js";
import type { RegistrationLimit } from "./registration.js";
import type { PlainVerifier } from "./sasl/plain-cache.js";
import type { SmPipe } from "./sm-pipe.js";

/** A front end's settings: its c2s section, with the farm's domains and XML limits. */
export type C2sSettings = Config["c2s"] & { domains: string[]; xml: Config["xml"] };

export interface ConnectionHost<Conn extends Throttled> {
  readonly config: C2sSettings;
  readonly store: Pick<Store, "getLoginAccount" | "setCredentials" | "createAccount">;
  readonly link: Pick<LinkClient, "connected" | "send" | "sendControl">;
  readonly tls: Pick<TlsCredentials, "context">;
  readonly balancer: Pick<Balancer, "returned" | "wasSent" | "redirectFor" | "moveTarget" | "peerNames" | "remember">;
  readonly log: Logger;
  /** Sessions served here, which the connection counts in and out. */
  sessions: number;
  /** What the connections count for the metrics: logins, stanzas, bytes, redirects. */
  readonly counters: C2sCounters;
  readonly plain: Pick<PlainVerifier, "checkAccount">;
  readonly rates: Pick<ReadThrottle<Conn>, "charge" | "holds">;
  readonly limits: { readonly unauthenticated: XmlLimits; readonly authenticated: XmlLimits };
  readonly gate: Pick<ConnectionGate, "enter" | "leave">;
  readonly throttle: Pick<LoginThrottle, "turn" | "failed" | "succeeded">;
  readonly registrations: Pick<RegistrationLimit, "take" | "giveBack">;

  nextSid(): string;
  streamId(): string;
  register(conn: Conn): void;
  /** Forgets a connection: closed, or its session handed over to another front end. */
  forget(conn: Conn, wasCounted: boolean): void;
  /** The front end stops, and its sm keeps session `sid` for its client to resume elsewhere (END `resume`). */
  leftForResumption(sid: string): void;
  awaitHandshake(conn: Conn): void;
  handshakeDone(conn: Conn): void;
  awaitAuth(conn: Conn): void;
  authDone(conn: Conn): void;
  holdIfLinkCongested(conn: Conn): void;
  holdsForLink(conn: Conn): boolean;
  awaitTaken(conn: Conn): void;
  doneWaiting(conn: Conn): void;
  oweAck(conn: Conn): void;
  owesAck(conn: Conn): boolean;
  ackSent(conn: Conn): void;
  clientAcked(user: string, sid: string, h: number, n: number): void;
  hibernate(conn: Conn): void;
  resumable(previd: string): Conn | undefined;
  replace(old: Conn, next: Conn): void;
  awaitHandoff(conn: Conn): void;
  handoffDone(conn: Conn): void;
  frontEndRun(name: string): number | undefined;
  alias(previd: string, conn: Conn): void;
  routeAgain(key: string, xml: string | Buffer, origin?: string): void;
  orphan(sid: string, pipe: SmPipe, prefix: string): void;
  scheduleDestroy(socket: net.Socket): void;
}
