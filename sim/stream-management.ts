// XEP-0198 on a simulated client's side (client.ts, client-session.ts): the
// counts of stanzas each way, and with resumption the session's id and the
// stanzas the server has not yet acknowledged, kept to be sent again after a
// resume or a new login.

export const NS_SM = "urn:xmpp:sm:3";
/** An ack request. */
export const REQUEST = `<r xmlns='${NS_SM}'/>`;

export const enableXml = (resume: boolean): string => `<enable xmlns='${NS_SM}'${resume ? " resume='true'" : ""}/>`;

export class StreamManagement {
  /** Stanzas received since enabled (-1: off), stanzas sent since enabled. */
  in = -1;
  out = 0;
  /** The scenario enabled it: a new session after a lost one enables it again. */
  wanted = false;
  /** Resumption: the session's id, our stanzas the server acknowledged, those it has not yet (null: no resumption). */
  id: string | null = null;
  acked = 0;
  queue: string[] | null = null;

  /** A stanza received: counted once enabled. */
  received(): void {
    if (this.in >= 0) this.in++;
  }

  /** A stanza sent: counted, and kept with resumption. True when an ack request is due (one every `every`). */
  sent(s: string, every: number): boolean {
    if (this.in < 0) return false;
    this.out++;
    this.queue?.push(s);
    return every > 0 && this.out % every === 0;
  }

  /** Enabling again in a new session: the old one's counts and id go. */
  restart(resume: boolean): void {
    this.in = 0;
    this.out = 0;
    this.acked = 0;
    this.id = null;
    this.queue = resume ? [] : null;
  }

  /** <enabled/>: resumable if it says so with an id. */
  enabled(resume: string | undefined, id: string | undefined): void {
    const resumable = resume === "true" || resume === "1";
    this.id = resumable ? (id ?? null) : null;
    if (!this.id) this.queue = null;
  }

  /** The server has our first h stanzas; they leave the queue. */
  ack(h: number): void {
    if (!Number.isFinite(h) || h <= this.acked) return;
    this.queue?.splice(0, h - this.acked);
    this.acked = h;
  }

  /** <resumed h/>: what the server did not acknowledge, to send again (and count again). */
  resumed(h: number): string[] {
    this.ack(h);
    const queue = this.queue ?? [];
    this.out = this.acked + queue.length;
    return queue;
  }

  /** Our <a h/> for what we received. */
  answer(): string {
    return `<a xmlns='${NS_SM}' h='${this.in}'/>`;
  }

  resumeXml(): string {
    return `<resume xmlns='${NS_SM}' previd='${this.id!.replace(/'/g, "&apos;")}' h='${this.in}'/>`;
  }
}
