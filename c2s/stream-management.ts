// XEP-0198 stream management state of one session, allocated only for
// clients that enable it: counters, the queue of stanzas the client has not
// acknowledged, and the resumption id. The id names the front end and the
// session, so that a resume reaching any front end finds its holder.
import { randomBytes } from "node:crypto";

export const NS_SM = "urn:xmpp:sm:3";
/** Unacknowledged stanzas a client may leave before it is cut off. */
export const MAX_UNACKED = 1000;
/** Ask for an acknowledgement every this many unacknowledged stanzas. */
export const ACK_EVERY = 5;

export class AckState {
  /** Stanzas received from the client (its 'h' as we report it). */
  inbound = 0;
  /** Stanzas sent to the client. */
  outbound = 0;
  /** Sent and not yet acknowledged, oldest first. */
  queue: string[] = [];

  constructor(
    readonly id: string,
    readonly resumable: boolean,
  ) {}

  static create(c2s: string, sid: string, resumable: boolean): AckState {
    return new AckState(`${c2s}~${sid}~${randomBytes(12).toString("base64url")}`, resumable);
  }

  sent(xml: string): void {
    this.outbound++;
    this.queue.push(xml);
  }

  /** The client acknowledged `h` stanzas in all; false if h is impossible. */
  acked(h: number): boolean {
    const unacked = this.outbound - h;
    if (!Number.isInteger(h) || unacked < 0 || unacked > this.queue.length) return false;
    this.queue.splice(0, this.queue.length - unacked);
    return true;
  }
}

/** The front end and session a resumption id names, or null. */
export function parseResumeId(id: string): { c2s: string; sid: string } | null {
  const parts = id.split("~");
  if (parts.length !== 3 || !parts[0] || !parts[1]) return null;
  return { c2s: parts[0], sid: parts[1] };
}
