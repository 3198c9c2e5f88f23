// What a front end counts as it serves, as plain numbers: each event costs
// an increment, and the metrics read them when scraped (c2s/c2s-metrics.ts).
export type StanzaKind = "message" | "presence" | "iq";

/** The stanza kind of serialized XML by its second character (<m…, <p…, <i…); null for anything else (<r/>, <a/>). */
export function kindOfXml(xml: string | Buffer): StanzaKind | null {
  const c = typeof xml === "string" ? xml.charCodeAt(1) : xml[1];
  return c === 0x6d ? "message" : c === 0x70 ? "presence" : c === 0x69 ? "iq" : null;
}

export class C2sCounters {
  /** Client sockets accepted (refused ones not counted). */
  accepted = 0;
  /** Successful logins and failed attempts, by SASL mechanism. */
  readonly logins: Record<string, number> = {};
  readonly authFailures: Record<string, number> = {};
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

  stanzaIn(name: string): void {
    if (name === "message" || name === "presence" || name === "iq") this.stanzasIn[name]++;
  }

  /** A stanza delivered to a client (a stanza's XML, never a stream element). */
  stanzaOut(xml: string | Buffer): void {
    const kind = kindOfXml(xml);
    if (kind) this.stanzasOut[kind]++;
  }
}
