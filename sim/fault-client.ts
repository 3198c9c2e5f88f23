// The fault harness's counting client (sim/faults.ts): one user on a raw
// stream that logs in (STARTTLS, SASL PLAIN, <see-other-host/>, bind), with
// or without XEP-0198, sends numbered messages when told to, and writes into
// a Ledger everything that happens to each one: sent, acknowledged by the
// farm's <a h/>, received (how often), bounced. When the farm drops it, it
// logs in again by itself (front end it had, then the other, as a two-address
// SRV record gives them): an XEP-0198 client first tries to resume, and on
// success sends again what the farm had not acknowledged, as XEP-0198 §4 asks;
// after a failed resume it starts a new session and sends nothing again.
import { logIn, type Element, type SoakConn } from "./soak-conn.js";
import { attr, unescapeXml } from "./xml-scan.js";
import { errorReplyXml } from "../lib/stanza-error.js";

const NS_SM = "urn:xmpp:sm:3";
const ANSWER_MS = 15_000;

export interface Sent {
  from: number;
  to: number;
  /** ms since the run began. */
  at: number;
  /** The sender's XEP-0198 <a h/> covered it. */
  acked: boolean;
  received: number;
  bounced: boolean;
  /** Still in offline storage when the run ended (its recipient could not collect it). */
  stored: boolean;
  /** ms from send to the first receipt. */
  latency: number;
}

/** Every message of a run and what became of it. */
export class Ledger {
  readonly sent = new Map<string, Sent>();
  readonly t0 = performance.now();
  /** Receipts of ids the ledger never sent (must stay 0: a check of the harness itself). */
  strays = 0;
  /** Receipts beyond a message's first, so far. */
  duplicates = 0;
  private seq = 0;
  /** Test hook: this many receipts are thrown away, so the counting must report them lost. */
  constructor(private discard = 0) {}

  now(): number {
    return performance.now() - this.t0;
  }

  newId(from: number, to: number): string {
    const id = `f${++this.seq}`;
    this.sent.set(id, { from, to, at: this.now(), acked: false, received: 0, bounced: false, stored: false, latency: -1 });
    return id;
  }

  received(id: string): void {
    const s = this.sent.get(id);
    if (!s) {
      this.strays++;
      return;
    }
    if (this.discard > 0) {
      this.discard--;
      return;
    }
    if (s.received++ === 0) s.latency = this.now() - s.at;
    else this.duplicates++;
  }

  bounced(id: string): void {
    const s = this.sent.get(id);
    if (s) s.bounced = true;
  }

  stored(id: string): void {
    const s = this.sent.get(id);
    if (s) s.stored = true;
  }

  /** Messages received or bounced so far, and sent: the load is in flight while they differ. */
  get settled(): { done: number; sent: number } {
    let done = 0;
    for (const s of this.sent.values()) if (s.received > 0 || s.bounced) done++;
    return { done, sent: this.sent.size };
  }
}

export interface ClientTarget {
  ports: number[];
  domain: string;
  password: string;
}

/** One drop of a client by the farm. */
export interface Drop {
  k: number;
  /** The port of the front end it was on. */
  port: number;
  at: number;
  /** When it had a session again (resumed or new); -1 while it has none. */
  backAt: number;
  resumeTried: boolean;
  resumed: boolean;
}

type State = "idle" | "connecting" | "active" | "down" | "leaving";

export class CountingClient {
  state: State = "idle";
  private conn: SoakConn | null = null;
  /** The port of the current (or last) connection, after redirects. */
  port: number;
  private smId: string | null = null;
  /** XEP-0198: stanzas received since <enabled/> (our h), and our stanzas the farm has not acknowledged. */
  private hIn = 0;
  private outCount = 0;
  private queue: { n: number; xml: string; id?: string }[] = [];
  /** Bumped by start(), close() and destroy(): a login still under way from an earlier epoch gives up. */
  private epoch = 0;

  constructor(
    readonly k: number,
    readonly user: number,
    readonly useSm: boolean,
    private readonly target: ClientTarget,
    private readonly ledger: Ledger,
    private readonly onDrop: (d: Drop) => void,
  ) {
    this.port = target.ports[k % target.ports.length]!;
  }

  /** Logs in (new session); rejects if no front end takes it. */
  async start(): Promise<void> {
    await this.connect(false, ++this.epoch);
  }

  /** Sends one message to user `to` if it has a session now; returns whether it did. */
  send(to: number): boolean {
    if (this.state !== "active" || !this.conn) return false;
    const id = this.ledger.newId(this.user, to);
    const xml = `<message to='user${to}@${this.target.domain}' type='chat' id='${id}'><body>${id}</body></message>`;
    this.conn.send(this.useSm ? `${this.stanza(xml, id)}<r xmlns='${NS_SM}'/>` : xml);
    return true;
  }

  /** Closes its stream (acknowledging everything first) and stops logging in again. */
  async close(): Promise<void> {
    this.epoch++;
    const c = this.conn;
    if (this.state !== "active" || !c) {
      c?.destroy();
      return;
    }
    this.state = "leaving";
    if (this.smId) c.send(`<a xmlns='${NS_SM}' h='${this.hIn}'/>`);
    c.send("</stream:stream>");
    if (!(await c.closedWithin(3_000))) c.destroy();
  }

  /** Ends at once: the run is over. */
  destroy(): void {
    this.epoch++;
    this.state = "leaving";
    this.conn?.destroy();
  }

  /** Counts an outbound stanza for XEP-0198 and returns it. */
  private stanza(xml: string, id?: string): string {
    if (this.smId) this.queue.push({ n: ++this.outCount, xml, ...(id ? { id } : {}) });
    return xml;
  }

  private acked(h: number): void {
    while (this.queue.length && this.queue[0]!.n <= h) {
      const q = this.queue.shift()!;
      if (q.id) {
        const s = this.ledger.sent.get(q.id);
        if (s) s.acked = true;
      }
    }
  }

  /** The ports to try, the one it had first. */
  private ports(): number[] {
    return [this.port, ...this.target.ports.filter((p) => p !== this.port)];
  }

  /** Logs in on the first front end that takes it; with `resume`, resumes the XEP-0198 session first. */
  private async connect(resume: boolean, epoch: number): Promise<boolean> {
    this.state = "connecting";
    let lastErr: Error | null = null;
    for (const first of this.ports()) {
      const conns: SoakConn[] = [];
      try {
        // A session to resume is resumed once authenticated, instead of bound.
        const resuming = resume && this.smId !== null;
        const { conn: c, port } = await logIn({
          port: first,
          localAddress: "127.0.0.1",
          domain: this.target.domain,
          user: `user${this.user}`,
          password: this.target.password,
          mechanism: "PLAIN",
          answerMs: ANSWER_MS,
          track: (x) => conns.push(x),
          until: resuming ? "authenticated" : "bound",
        });
        c.keepAll();
        if (epoch !== this.epoch) {
          c.destroy();
          return false;
        }
        this.conn = c;
        this.port = port;
        const resumed = resuming ? await this.resume(c) : false;
        if (!resumed) await this.newSession(c, !resuming);
        this.state = "active";
        c.tap(
          (x) => this.element(x),
          () => this.lost(c),
        );
        return resumed;
      } catch (err) {
        lastErr = err as Error;
        for (const x of conns) x.destroy();
      }
    }
    throw lastErr ?? new Error("no front end took the login");
  }

  private async resume(c: SoakConn): Promise<boolean> {
    c.send(`<resume xmlns='${NS_SM}' h='${this.hIn}' previd='${this.smId}'/>`);
    const e = await c.next((x) => x.name === "resumed" || x.name === "failed", ANSWER_MS);
    if (e.name !== "resumed") {
      this.smId = null;
      return false;
    }
    this.acked(Number(attr(e.xml, "h") ?? 0));
    // What the farm did not acknowledge goes again, numbered on from its h.
    const again = this.queue;
    this.outCount = Number(attr(e.xml, "h") ?? 0);
    this.queue = [];
    for (const q of again) c.send(this.stanza(q.xml, q.id));
    if (again.length) c.send(`<r xmlns='${NS_SM}'/>`);
    return true;
  }

  /** A new session on `c`: bound already by the login (`bound`), or bound now after a resume the farm refused. */
  private async newSession(c: SoakConn, bound: boolean): Promise<void> {
    this.smId = null;
    this.queue = [];
    if (!bound) await c.bind(ANSWER_MS);
    if (this.useSm) {
      c.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
      const e = await c.next((x) => x.name === "enabled" || x.name === "failed", ANSWER_MS);
      if (e.name !== "enabled") throw new Error("XEP-0198 refused");
      this.smId = attr(e.xml, "id") ?? null;
      this.hIn = 0;
      this.outCount = 0;
    }
    // Initial presence: the farm sends offline messages after it.
    c.send(this.stanza("<presence/>"));
  }

  private element(e: Element): void {
    const stanza = e.name === "message" || e.name === "presence" || e.name === "iq";
    if (stanza && this.smId) this.hIn++;
    if (e.name === "message") {
      const id = attr(e.xml, "id");
      if (!id) return;
      if (attr(e.xml, "type") === "error") this.ledger.bounced(unescapeXml(id));
      else this.ledger.received(unescapeXml(id));
    } else if (e.name === "r" && this.smId) this.conn?.send(`<a xmlns='${NS_SM}' h='${this.hIn}'/>`);
    else if (e.name === "a") this.acked(Number(attr(e.xml, "h") ?? 0));
    else if (e.name === "iq" && attr(e.xml, "type") === "get") {
      // A ping or any other query: answered, so the farm never waits on us.
      // The reply names no 'from' (the stanza's 'to' is not handed over): the farm stamps ours.
      const [id, from] = [attr(e.xml, "id"), attr(e.xml, "from")];
      this.conn?.send(errorReplyXml({ name: "iq", attrs: { id: id && unescapeXml(id), from: from && unescapeXml(from) } }, "service-unavailable"));
    }
  }

  /** The farm closed the connection: a drop, unless we were leaving. */
  private lost(c: SoakConn): void {
    if (c !== this.conn || this.state === "leaving") return;
    this.conn = null;
    this.state = "down";
    const drop: Drop = { k: this.k, port: this.port, at: this.ledger.now(), backAt: -1, resumeTried: this.useSm && this.smId !== null, resumed: false };
    this.onDrop(drop);
    void this.comeBack(drop, this.epoch);
  }

  /** Logs in again, with a short backoff that grows while no front end takes it. */
  private async comeBack(drop: Drop, epoch: number): Promise<void> {
    for (let wait = 100 + Math.random() * 400; epoch === this.epoch; wait = Math.min(wait * 2, 3_000)) {
      await new Promise((r) => setTimeout(r, wait));
      if (epoch !== this.epoch) return;
      try {
        const resumed = await this.connect(true, epoch);
        if (epoch !== this.epoch) return;
        drop.resumed = resumed;
        drop.backAt = this.ledger.now();
        return;
      } catch {
        // every front end refused or failed: try again
      }
    }
  }
}
