// TAKEN (protocol §2.5): the sm tells each c2s which of its clients'
// stanzas it has taken, and which sessions it does not hold.
import { AckBatch } from "../lib/link/ack-batch.js";
import type { RoutePort } from "../lib/link/member.js";
import { SessionOp, encodeSessionPayload, type TakenMeta } from "../lib/link/session-payload.js";

/** Sessions one TAKEN names at most. */
const PER_FRAME = 1000;

export class TakenAcks {
  private readonly batch: AckBatch<TakenMeta>;

  constructor(port: RoutePort) {
    this.batch = new AckBatch<TakenMeta>(
      PER_FRAME,
      () => ({ taken: {}, unknown: [] }),
      (c2s, meta) => {
        const unknown = meta.unknown!.length > 0 ? { unknown: meta.unknown } : {};
        port.send(c2s, "", encodeSessionPayload(SessionOp.Taken, { taken: meta.taken, ...unknown }));
      },
    );
  }

  /** Every STANZA of session `sid` on `c2s` up to `seq` was taken. */
  taken(c2s: string, sid: string, seq: number): void {
    // A later frame of the same turn may name the session again, with a higher seq: the c2s reads them in order.
    this.batch.frame(c2s).taken[sid] = seq;
  }

  /** A STANZA came for a session this sm does not hold. */
  unknown(c2s: string, sid: string): void {
    this.batch.frame(c2s).unknown!.push(sid);
  }
}
