// A lost front end's clients come back in a storm, to front ends that never
// checked their passwords: for a client that logs in with SASL PLAIN, that
// is a PBKDF2 run each there, the dearest step of a login (docs/bench.md,
// Storm). So the sm keeps each PLAIN session's voucher (START `plain`) and,
// while a front end is lost, sends its sessions' vouchers to every other
// front end, and to the lost one's next process (protocol §2.8).
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import type { SmContext } from "./sm-context.js";

/** JSON bytes of one VOUCHERS meta at most, within metaLen's 16 bits. */
const META_BYTES = 60_000;

export class FrontEndVouchers {
  /** Lost front end → the front ends ("name started") it was sent to. */
  private readonly sent = new Map<string, Set<string>>();

  constructor(private readonly ctx: SmContext) {}

  /**
   * `lost` is missing from the member table, or back as a new process: its
   * sessions' vouchers go to each front end of `c2s` (name → `started`) not
   * sent them yet, the new process of `lost` among them.
   */
  send(lost: string, c2s: ReadonlyMap<string, unknown>): void {
    const sent = this.sent.get(lost) ?? new Set<string>();
    this.sent.set(lost, sent);
    let frames: { payloads: Buffer[]; vouchers: number } | null = null;
    for (const [name, started] of c2s) {
      const incarnation = `${name} ${String(started)}`;
      if (sent.has(incarnation)) continue;
      sent.add(incarnation);
      frames ??= this.frames(lost);
      for (const frame of frames.payloads) this.ctx.port.send(name, "", frame);
      if (frames.vouchers > 0) this.ctx.log.info({ lost, to: name, vouchers: frames.vouchers }, "PLAIN vouchers of a lost front end's sessions sent");
    }
  }

  /** `lost` is back as the same process, or its sessions are gone: nothing more is sent for it. */
  done(lost: string): void {
    this.sent.delete(lost);
  }

  /** VOUCHERS frames for the sessions held for `lost`, each user's once. */
  private frames(lost: string): { payloads: Buffer[]; vouchers: number } {
    const payloads: Buffer[] = [];
    let plain: Record<string, string> = {};
    let bytes = 0;
    const users = new Set<string>();
    const flush = () => {
      if (bytes > 0) payloads.push(encodeSessionPayload(SessionOp.Vouchers, { from: lost, plain }));
      plain = {};
      bytes = 0;
    };
    for (const session of this.ctx.registry.all()) {
      if (session.c2s !== lost || session.plainVoucher === null || users.has(session.user)) continue;
      // A JID's JSON is at most twice its UTF-8 bytes (a backslash is escaped); then quotes, colon, comma and the voucher.
      const size = 2 * Buffer.byteLength(session.user) + 50;
      if (bytes + size > META_BYTES) flush();
      plain[session.user] = session.plainVoucher;
      bytes += size;
      users.add(session.user);
    }
    flush();
    return { payloads, vouchers: users.size };
  }
}
