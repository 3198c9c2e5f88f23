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

/** A stanza sent and not yet acknowledged. */
export interface Unacked {
  xml: string;
  /** Its size in UTF-8 bytes. */
  bytes: number;
  /** The store id of an offline message the sm keeps until it is acknowledged (protocol §2.4); 0 for any other stanza. */
  confirm: number;
  /** Its DELIVER's `n` (protocol §2.6); 0 for a stanza the sm did not number. */
  n: number;
}

export class AckState {
  /** Stanzas received from the client (its 'h' as we report it). */
  inbound = 0;
  /** Stanzas sent to the client. */
  outbound = 0;
  /** Sent and not yet acknowledged, oldest first. */
  queue: Unacked[] = [];
  /** UTF-8 bytes of the queue, held against c2s.max_unacked_bytes. */
  bytes = 0;
  /** The highest `confirm` acknowledged and not yet taken. */
  private confirmed = 0;
  /** The highest DELIVER `n` written, and the highest acknowledged (protocol §2.6). */
  lastN = 0;
  ackedN = 0;

  constructor(
    readonly id: string,
    readonly resumable: boolean,
  ) {}

  static create(c2s: string, sid: string, resumable: boolean): AckState {
    return new AckState(`${c2s}~${sid}~${randomBytes(12).toString("base64url")}`, resumable);
  }

  sent(xml: string, bytes: number, confirm = 0, n = 0): void {
    this.outbound++;
    this.queue.push({ xml, bytes, confirm, n });
    this.bytes += bytes;
    if (n > this.lastN) this.lastN = n;
  }

  /** Takes back a stanza another front end sent and the client did not acknowledge (a resumption there). */
  requeue(xml: string, bytes: number, confirm: number, n: number): void {
    this.queue.push({ xml, bytes, confirm, n });
    this.bytes += bytes;
  }

  /** The client acknowledged `h` stanzas in all; false if h is impossible. */
  acked(h: number): boolean {
    const unacked = this.outbound - h;
    if (!Number.isInteger(h) || unacked < 0 || unacked > this.queue.length) return false;
    for (const done of this.queue.splice(0, this.queue.length - unacked)) {
      this.bytes -= done.bytes;
      if (done.confirm > this.confirmed) this.confirmed = done.confirm;
      if (done.n > this.ackedN) this.ackedN = done.n;
    }
    return true;
  }

  /** The highest `confirm` among the offline messages acknowledged since the last call; 0 if none. */
  takeConfirmed(): number {
    const confirmed = this.confirmed;
    this.confirmed = 0;
    return confirmed;
  }
}

/** What the sm keeps of a resumable session (protocol §2.6), promised to the client in <enabled/>. */
export function resumePromise(
  ack: AckState,
  config: { resume_timeout: number; max_unacked_bytes: number },
): { id: string; max: number; stanzas: number; bytes: number } {
  return { id: ack.id, max: config.resume_timeout, stanzas: MAX_UNACKED, bytes: config.max_unacked_bytes };
}

/** The front end and session a resumption id names, or null. */
export function parseResumeId(id: string): { c2s: string; sid: string } | null {
  const parts = id.split("~");
  if (parts.length !== 3 || !parts[0] || !parts[1]) return null;
  return { c2s: parts[0], sid: parts[1] };
}
