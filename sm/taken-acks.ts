// TAKEN (protocol §2.5): the sm tells each c2s which of its clients'
// stanzas it has taken, and which sessions it does not hold.
import { AckBatch } from "../lib/link/ack-batch.js";
import type { RoutePort } from "../lib/link/member.js";
import { takenPayload } from "../lib/link/session-payload.js";

/** Entries one TAKEN carries at most (a session named again for its later stanzas counts again). */
const PER_FRAME = 1000;

interface TakenFrame {
  /** sid, seq, sid, seq, … */
  seqs: (string | number)[];
  unknown: string[];
}

export class TakenAcks {
  private readonly batch: AckBatch<TakenFrame>;
  /** The front ends that read TAKEN's flat form (their `info`, protocol §1.5). */
  flatReaders: ReadonlySet<string> = new Set();

  constructor(port: RoutePort) {
    this.batch = new AckBatch<TakenFrame>(
      PER_FRAME,
      () => ({ seqs: [], unknown: [] }),
      (c2s, frame) => port.send(c2s, "", takenPayload(frame.seqs, frame.unknown, this.flatReaders.has(c2s))),
    );
  }

  /** Every STANZA of session `sid` on `c2s` up to `seq` was taken. */
  taken(c2s: string, sid: string, seq: number): void {
    // A later entry of the same turn may name the session again, with a higher seq: the c2s reads them in order.
    this.batch.frame(c2s).seqs.push(sid, seq);
  }

  /** A STANZA came for a session this sm does not hold. */
  unknown(c2s: string, sid: string): void {
    this.batch.frame(c2s).unknown.push(sid);
  }
}
