// The farm ending a client's stream for reasons of its own, not the
// client's: a drain moving it to another front end, and the front end
// stopping (docs/redirection.md). Decided here: where the client is sent,
// whose session waits for an XEP-0198 resumption and where, and which
// client is still read after its stream error so that what it wrote before
// reading it is routed: one without XEP-0198, whichever way it is sent
// away. One with it sends again, once logged in anew, what the server never
// acknowledged (XEP-0198 §4), and a copy routed from here would come twice.
import type { Redirect } from "./balancer.js";
import type { ConnectionHost } from "./connection-host.js";
import type { Throttled } from "./read-throttle.js";
import * as sessionPipe from "./session-pipe.js";
import { streamError } from "./stream-writer.js";

const SHUTDOWN_TEXT = "the server is shutting down";

/** What sending a client away reads and does of its connection (client-connection.ts). */
export interface Departing extends sessionPipe.SessionLink {
  readonly ctx: sessionPipe.PipeHost & Pick<ConnectionHost<Throttled>, "balancer">;
  /** It connected to the direct-TLS port: sent to the target's. */
  readonly direct: boolean;
  streamError(condition: string, text?: string, content?: string): void;
  /** What the client writes after its coming stream error is still read until it closes its side, and its messages routed. */
  readOnAfterClose(): void;
  /** Writes `last` and keeps the session here, hibernating, for the client to resume on another front end (protocol §2.3). */
  hibernateAfter(last: string): void;
  /** Writes `last`, if any, once the turn's link frames have left, and lets the connection go: its sm was told already. */
  closeAfterLink(last: string | null): void;
}

/** Sends the bound client to another front end (a drain), remembering it in case it comes back. */
export function moveTo(c: Departing, target: Redirect): void {
  c.ctx.balancer.remember(c.ip, c.user!);
  sendAway(c, target, "this server is being drained", c.ack?.resumable === true);
}

/**
 * <see-other-host/>, after telling the target to expect this client. With
 * `keepSession` (XEP-0198), the session waits here, hibernating, while the
 * client resumes it on the target (protocol §2.3). Without, a bound client
 * without XEP-0198 is read on, so a move costs it no message it sent.
 */
export function sendAway(c: Departing, target: Redirect, text?: string, keepSession = false): void {
  expectAt(c, target);
  if (!keepSession) {
    readOnIfUnacknowledged(c);
    return c.streamError("see-other-host", text, target.address);
  }
  c.log.info({ to: target.address, text, user: c.user, resumable: true }, "redirected");
  c.hibernateAfter(streamError("see-other-host", text, target.address));
}

/** The front end stops. A resumable session is left to its sm (below); any other client is read on as one sent away is. */
export function shutDown(c: Departing): void {
  if ((c.stage === "bound" || c.stage === "hibernating") && c.ack?.resumable && c.smKnows) return leaveForResumption(c);
  readOnIfUnacknowledged(c);
  c.streamError("system-shutdown", SHUTDOWN_TEXT);
}

/**
 * The front end stops under a resumable session, or a drain lets go of one
 * that has waited here too long for its client: the sm keeps it (END
 * `resume`, protocol §2.6) for its client to resume on another front end,
 * to which an attached client is sent as a drain sends it; without
 * another, it is told the server shuts down. A hibernating one is only let go.
 */
export function leaveForResumption(c: Departing): void {
  const attached = c.stage === "bound";
  sessionPipe.end(c, true);
  if (!attached) return c.closeAfterLink(null);
  const target = c.ctx.balancer.moveTarget(c.direct);
  if (target) expectAt(c, target);
  c.log.info({ to: target?.address, text: SHUTDOWN_TEXT, resumable: true }, target ? "redirected" : "stream error");
  // After the END has left for the router: the sm must hold the session for resumption before the client can ask.
  c.closeAfterLink(target ? streamError("see-other-host", SHUTDOWN_TEXT, target.address) : streamError("system-shutdown", SHUTDOWN_TEXT));
}

/** A bound client without XEP-0198 is read after its stream error (above). */
function readOnIfUnacknowledged(c: Departing): void {
  if (c.stage === "bound" && c.ack === null) c.readOnAfterClose();
}

/** Tells `target` to take this client without redirecting it again (protocol §1.6, `expect`). */
function expectAt(c: Departing, target: Redirect): void {
  const plain = c.voucher?.toString("base64");
  c.ctx.link.sendControl({ op: "expect", to: target.name, ip: c.ip, user: c.user!, from: c.ctx.config.name, ...(plain && { plain }) });
  c.ctx.counters.redirectsSent++;
}
