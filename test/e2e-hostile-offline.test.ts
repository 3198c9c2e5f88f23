// Issue 13, M4 and the XEP-0198 queue: a flood of large messages for a user
// who is offline, or who never acknowledges, on a real farm. Over its quota
// a message bounces to its sender; the backlog arrives at login whole and in
// order, with XEP-0198 and without, a batch at a time, so that the front end
// never cuts the client off and the sm holds a batch, not the backlog; what
// a client did not get stays stored for its next login; an XEP-0198 session
// holds no more than c2s.max_unacked_bytes, attached or hibernating, and
// what it gives back is stored, not lost.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../xdb-sql/open-store.js";
import type { Store } from "../xdb-sql/store.js";
import { Farm } from "./harness/farm.js";
import { processStats, survivors } from "./harness/processes.js";
import { HEADER, type RawStream, secureStream } from "./harness/raw-stream.js";

const NS_SM = "urn:xmpp:sm:3";
const PROCESSES = ["c2s-1", "c2s-2", "sm-1", "router-1"];
/** The quota in this farm: 400 messages; bytes far above, so that the count decides. */
const QUOTA = 400;
const BODY = "x".repeat(100_000);
/** Unacknowledged bytes an XEP-0198 session may hold here: ten of those messages. */
const MAX_UNACKED = 1024 * 1024;

const ids = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/** The top-level elements a client reads, taken from the stream as they come, so that megabytes never pile up. */
class Inbox {
  /** Ids of the messages read, in order. */
  readonly ids: string[] = [];
  /** Ids of the error messages read. */
  readonly errors: string[] = [];
  /** Messages read that carry a XEP-0203 delay (offline storage). */
  delayed = 0;
  /** Stanzas read since stream management was enabled (the client's h), after each message. */
  readonly handledAt: number[] = [];
  handled = 0;
  /** Acknowledgement requests read. */
  asked = 0;
  /** Other stanzas read, whole. */
  readonly other: string[] = [];

  constructor(readonly s: RawStream) {}

  /** Reads every complete element received so far. */
  take(): void {
    const text = this.s.received;
    let at = 0;
    for (;;) {
      while (at < text.length && /\s/.test(text[at]!)) at++;
      const end = elementEnd(text, at);
      if (end < 0) break;
      this.read(text.slice(at, end), text.slice(at, text.indexOf(">", at) + 1));
      at = end;
    }
    this.s.received = text.slice(at);
  }

  private read(element: string, open: string): void {
    const name = /^<([\w:]+)/.exec(open)![1]!;
    if (name === "r") {
      this.asked++;
      return;
    }
    if (name === "message" || name === "presence" || name === "iq") this.handled++;
    if (name !== "message") return void this.other.push(element);
    const id = /\bid=["']([^"']*)["']/.exec(open)?.[1] ?? "";
    if (/\btype=["']error["']/.test(open)) return void this.errors.push(id);
    this.ids.push(id);
    this.handledAt.push(this.handled);
    if (element.includes("urn:xmpp:delay")) this.delayed++;
  }
}

/** Where the element starting at `at` ends, or -1 if it has not all arrived (or is not an element). */
function elementEnd(text: string, at: number): number {
  if (text[at] !== "<" || text.startsWith("</", at)) return -1;
  const close = text.indexOf(">", at);
  if (close < 0) return -1;
  if (text[close - 1] === "/") return close + 1;
  const name = /^<([\w:]+)/.exec(text.slice(at, close))![1]!;
  const end = text.indexOf(`</${name}>`, close);
  return end < 0 ? -1 : end + name.length + 3;
}

describe("hostile offline backlogs and XEP-0198 queues", () => {
  let farm: Farm;
  let store: Store;
  const streams: RawStream[] = [];
  const jid = (n: number) => `u${n}@localhost`;

  beforeAll(async () => {
    farm = await Farm.create({
      c2sCount: 2,
      sm: { max_offline_messages: QUOTA, max_offline_bytes: 256 * 1024 * 1024 },
      // Every client stays on the front end it chose: no redirects. The flooding sender sends
      // tens of MB at once: its rate limit is not what this test is about.
      c2s: { max_unacked_bytes: MAX_UNACKED, redirect_margin: 1000, rate_bytes: 64 * 1024 * 1024, rate_stanzas: 100_000 },
      logLevel: "info",
    });
    await farm.start();
    await farm.addUsers("u", 10, "pw", 64);
    store = await openStore(`sqlite:${path.join(farm.dir, "data", "xfarm.db")}`);
  });

  afterAll(async () => {
    for (const s of streams) s.destroy();
    await store?.close();
    await farm.stop();
    farm.cleanup();
  });

  /** Authenticates a user on a front end (0 or 1) from a loopback address, up to the bind feature. */
  async function authenticate(n: number, localAddress: string, c2s = 0): Promise<RawStream> {
    const s = await secureStream(farm.c2sPorts[c2s]!.port, localAddress);
    streams.push(s);
    s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0u${n}\0pw`).toString("base64")}</auth>`);
    await s.until(/<success/);
    s.send(HEADER());
    await s.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    return s;
  }

  /** Logs a user in, binds, maybe enables XEP-0198, and sends initial presence; `resumeId` is XEP-0198's id. */
  async function login(n: number, localAddress: string, opts: { sm?: "on" | "resume" } = {}): Promise<Inbox & { resumeId?: string }> {
    const s = await authenticate(n, localAddress);
    s.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>");
    await s.until(/<jid>/);
    let resumeId: string | undefined;
    if (opts.sm) {
      s.send(`<enable xmlns='${NS_SM}'${opts.sm === "resume" ? " resume='true'" : ""}/>`);
      resumeId = /<enabled[^>]*\bid='([^']+)'/.exec(await s.until(/<enabled[^>]*>/))?.[1];
    }
    // Counting for XEP-0198 starts here: nothing else comes before our presence.
    s.received = "";
    s.send("<presence/>");
    return Object.assign(new Inbox(s), { resumeId });
  }

  /** Resumes an XEP-0198 session on a front end, having handled `h` stanzas; what is sent again is read from here. */
  async function resume(n: number, localAddress: string, c2s: number, previd: string, h: number): Promise<Inbox> {
    const s = await authenticate(n, localAddress, c2s);
    s.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='${h}'/>`);
    const resumed = /<resumed[^>]*\/>/.exec(await s.until(/<resumed[^>]*\/>/))!;
    s.received = s.received.slice(resumed.index + resumed[0].length);
    const inbox = new Inbox(s);
    inbox.handled = h;
    return inbox;
  }

  /** Sends `count` messages of 100 kB from one user to another, ids prefix1…prefixN, as fast as the front end reads. */
  async function flood(from: Inbox, to: string, prefix: string, count: number): Promise<void> {
    const messages = ids(prefix, 1, count).map((id) => `<message to='${to}' type='chat' id='${id}'><body>${BODY}</body></message>`);
    expect(await from.s.sendAll(messages)).toBe(messages.reduce((n, m) => n + m.length, 0));
  }

  /**
   * Reads until `count` messages have come, acknowledging (XEP-0198) each
   * request with what was read, capped at the message numbered `ackUpTo`.
   */
  async function readMessages(inbox: Inbox, count: number, opts: { sm?: boolean; ackUpTo?: number } = {}): Promise<void> {
    let answered = 0;
    const h = () => (opts.ackUpTo === undefined ? inbox.handled : Math.min(inbox.handled, inbox.handledAt[opts.ackUpTo - 1] ?? inbox.handled));
    while (inbox.ids.length < count) {
      await inbox.s.until(() => {
        inbox.take();
        return inbox.ids.length >= count || (opts.sm === true && inbox.asked > answered);
      }, 60_000);
      if (opts.sm && inbox.asked > answered) {
        answered = inbox.asked;
        inbox.s.send(`<a xmlns='${NS_SM}' h='${h()}'/>`);
      }
    }
    // The front end's last <r/> may come with the last message, or after it: a client answers
    // every request, so acknowledge what was read (unless capped), whether or not it was asked yet.
    if (opts.sm && opts.ackUpTo === undefined) inbox.s.send(`<a xmlns='${NS_SM}' h='${h()}'/>`);
  }

  /** Waits until the store holds `count` offline messages for a user (what the sm committed, not a log line). */
  async function stored(user: string, count: number): Promise<void> {
    await expect.poll(() => store.countOffline(user), { timeout: 60_000, interval: 100 }).toBe(count);
  }

  /** The stream still serves the client: a ping is answered. */
  async function stillServed(inbox: Inbox): Promise<void> {
    inbox.s.send("<iq type='get' id='still' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await inbox.s.until(() => {
      inbox.take();
      return inbox.other.some((x) => /id=["']still["']/.test(x));
    }, 30_000);
    expect(inbox.s.closed).toBe(false);
  }


  it("bounces what is over the quota, then delivers a 40 MB backlog whole, in order, without XEP-0198", { timeout: 240_000 }, async () => {
    const attacker = await login(1, "127.0.0.2");
    await flood(attacker, jid(2), "a", QUOTA + 10);
    // The ten over the quota come back as errors, and only those: the sender hears of every one it lost.
    await attacker.s.until(() => {
      attacker.take();
      return attacker.errors.length >= 10;
    }, 120_000);
    expect(attacker.errors).toEqual(ids("a", QUOTA + 1, QUOTA + 10));
    expect(attacker.other.filter((x) => /service-unavailable/.test(x))).toEqual([]);
    await stored(jid(2), QUOTA);

    const before = processStats(farm, PROCESSES);
    const victim = await login(2, "127.0.0.5");
    await readMessages(victim, QUOTA);
    expect(victim.ids).toEqual(ids("a", 1, QUOTA));
    expect(victim.delayed).toBe(QUOTA);
    await stillServed(victim);
    await stored(jid(2), 0);
    expect(attacker.errors).toHaveLength(10);
    const grown = survivors(farm, before);
    // The sm held a batch (512 KiB) at a time, never the 40 MB backlog (measured: about 10 MB of
    // heap growth, the same for half the backlog); the c2s a batch of unread data.
    expect(grown["sm-1"]).toBeLessThan(24 * 1024);
    expect(grown["c2s-1"]).toBeLessThan(40 * 1024);
  });

  it("delivers a backlog larger than the write guard whole and in order with XEP-0198", { timeout: 120_000 }, async () => {
    const attacker = await login(1, "127.0.0.3");
    await flood(attacker, jid(3), "b", 60);
    await stored(jid(3), 60);
    const before = processStats(farm, PROCESSES);
    const victim = await login(3, "127.0.0.6", { sm: "on" });
    await readMessages(victim, 60, { sm: true });
    expect(victim.ids).toEqual(ids("b", 1, 60));
    await stillServed(victim);
    // Deleted as the client acknowledged them.
    await stored(jid(3), 0);
    survivors(farm, before);
  });

  /**
   * 60 messages stored for user n; it logs in with XEP-0198, acknowledges
   * the first 25 whatever else it read meanwhile, and leaves without closing
   * its stream. Returns its stream's resumption id and its h.
   */
  async function leaveAfter25(n: number, prefix: string, localAddress: string, sm: "on" | "resume"): Promise<{ resumeId?: string; h: number }> {
    const attacker = await login(1, "127.0.0.3");
    await flood(attacker, jid(n), prefix, 60);
    await stored(jid(n), 60);
    const first = await login(n, localAddress, { sm });
    await readMessages(first, 25, { sm: true, ackUpTo: 25 });
    const h = first.handledAt[24]!;
    first.s.send(`<a xmlns='${NS_SM}' h='${h}'/>`);
    first.s.end();
    await first.s.untilClosed(30_000);
    await stored(jid(n), 35);
    return { resumeId: first.resumeId, h };
  }

  it("keeps what an XEP-0198 client did not acknowledge for its next login", { timeout: 120_000 }, async () => {
    const before = processStats(farm, PROCESSES);
    await leaveAfter25(4, "c", "127.0.0.7", "on");
    const second = await login(4, "127.0.0.7");
    await readMessages(second, 35);
    expect(second.ids).toEqual(ids("c", 26, 60));
    await stored(jid(4), 0);
    survivors(farm, before);
  });

  it("resumes an XEP-0198 session on the other front end mid-backlog: the rest comes, each message once", { timeout: 120_000 }, async () => {
    const before = processStats(farm, PROCESSES);
    // No stream close: the session waits on c2s-1.
    const { resumeId, h } = await leaveAfter25(7, "f", "127.0.0.10", "resume");
    // c2s-2 takes the session over from c2s-1 with what the client did not acknowledge, offline messages included.
    const second = await resume(7, "127.0.0.10", 1, resumeId!, h);
    await readMessages(second, 35, { sm: true });
    expect(second.ids).toEqual(ids("f", 26, 60));
    await stored(jid(7), 0);
    survivors(farm, before);
  });

  it("ends an XEP-0198 session over c2s.max_unacked_bytes and stores what it held, losing nothing", { timeout: 120_000 }, async () => {
    const attacker = await login(1, "127.0.0.3");
    const victim = await login(5, "127.0.0.8", { sm: "on" });
    // Available: the attacker's messages reach the session, which reads and never acknowledges.
    await stillServed(victim);
    const before = processStats(farm, PROCESSES);
    await flood(attacker, jid(5), "d", 20);
    const end = await victim.s.untilClosed(30_000);
    expect(end).toMatch(/<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    // Every one of the 20 is stored: those it held, those on their way, those that came after.
    await stored(jid(5), 20);
    expect(attacker.errors).toEqual([]);
    const again = await login(5, "127.0.0.8");
    await readMessages(again, 20);
    expect([...again.ids].sort()).toEqual(ids("d", 1, 20).sort());
    await stored(jid(5), 0);
    const grown = survivors(farm, before);
    expect(grown["c2s-1"]).toBeLessThan(32 * 1024);
  });

  it("ends a hibernating XEP-0198 session that would hold more than c2s.max_unacked_bytes", { timeout: 120_000 }, async () => {
    const attacker = await login(1, "127.0.0.3");
    const victim = await login(6, "127.0.0.9", { sm: "resume" });
    await stillServed(victim);
    const before = processStats(farm, PROCESSES);
    // The connection drops; the session waits for a resumption (300 s here), holding what comes.
    victim.s.destroy();
    await flood(attacker, jid(6), "e", 20);
    // Long before its resumption window ends, the session ends at the limit and all 20 are stored.
    await stored(jid(6), 20);
    expect(attacker.errors).toEqual([]);
    const again = await login(6, "127.0.0.9");
    await readMessages(again, 20);
    expect([...again.ids].sort()).toEqual(ids("e", 1, 20).sort());
    survivors(farm, before);
  });
});
