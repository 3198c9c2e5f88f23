// What a front end counts as it serves, as plain numbers: each event costs
// an increment, and the metrics read them when scraped (c2s/c2s-metrics.ts).
import type { PlainProof } from "./sasl/plain-cache.js";

export type StanzaKind = "message" | "presence" | "iq";

/** The stanza kind of serialized XML by its second character (<m…, <p…, <i…); null for anything else (<r/>, <a/>). */
export function kindOfXml(xml: string | Buffer): StanzaKind | null {
  const c = typeof xml === "string" ? xml.charCodeAt(1) : xml[1];
  return c === 0x6d ? "message" : c === 0x70 ? "presence" : c === 0x69 ? "iq" : null;
}

/** How a SASL PLAIN password was checked: found right as PlainProof says, or wrong (a PBKDF2 run too). */
export type PlainCheck = PlainProof | "wrong";

export class C2sCounters {
  /** Client sockets accepted (refused ones not counted). */
  accepted = 0;
  /** Successful logins and failed attempts, by SASL mechanism. */
  readonly logins: Record<string, number> = {};
  readonly authFailures: Record<string, number> = {};
  /** PLAIN passwords checked, by how: "pbkdf2" and "wrong" each cost a PBKDF2 run, the dearest step of a login. */
  readonly plainChecks: Record<PlainCheck, number> = { pbkdf2: 0, remembered: 0, vouched: 0, wrong: 0 };
  /** Stanzas read from bound clients, by kind (`message`: the load report's `messages`). */
  readonly stanzasIn: Record<StanzaKind, number> = { message: 0, presence: 0, iq: 0 };
  readonly stanzasOut: Record<StanzaKind, number> = { message: 0, presence: 0, iq: 0 };
  /** Bytes read from clients, and written to them (the last stream error of a connection not counted), inside TLS. */
  bytesIn = 0;
  bytesOut = 0;
  /** Clients sent to another front end (balance, full, drain), and clients that came here because one sent them. */
  redirectsSent = 0;
  redirectsFollowed = 0;

  /** Successful logins, every mechanism (the load report's `logins`, protocol §1.6). */
  get loginTotal(): number {
    let n = 0;
    for (const k in this.logins) n += this.logins[k]!;
    return n;
  }

  login(mechanism: string): void {
    this.logins[mechanism] = (this.logins[mechanism] ?? 0) + 1;
  }

  authFailure(mechanism: string): void {
    this.authFailures[mechanism] = (this.authFailures[mechanism] ?? 0) + 1;
  }

  plainCheck(how: PlainCheck): void {
    this.plainChecks[how]++;
  }

  stanzaIn(name: string): void {
    if (name === "message" || name === "presence" || name === "iq") this.stanzasIn[name]++;
  }

  /** A stanza delivered to a client (a stanza's XML, never a stream element). */
  stanzaOut(xml: string | Buffer): void {
    const kind = kindOfXml(xml);
    if (kind) this.stanzasOut[kind]++;
  }
}
