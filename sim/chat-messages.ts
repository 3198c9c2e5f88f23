// The simulator's chat messages (client-session.ts). A message's body carries
// the sender's wall clock and its name in the run (sender and count), so that
// the receiver times it and the worker counts it once; its id carries the
// name too, for a bounce to say whose it was.
import type { Ctx } from "./client-ctx.js";
import { attr, firstChild } from "./xml-scan.js";

/**
 * A message written this shortly before its connection was cut, by a client
 * without XEP-0198 resumption, may never have been read by the server; no
 * acknowledgement tells the client either way. A busy server reads late: its
 * event loop may lag by more than c2s.max_lag (500 ms) before it cuts, and
 * what it has not read by then it never reads.
 */
const UNCONFIRMED_MS = 2000;

/** Wall clock in microseconds: the stamp a message carries (sender and receiver may be different processes). */
export function wallMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** User k's message number `seq`, of `size` bytes, to user `to` (online or not, as the chat action asked). */
export function chatMessage(ctx: Ctx, k: number, seq: number, to: number, online: boolean, size: number): string {
  // The sender and its count name the message in the run: in the id (for a bounce) and in the body.
  const tag = `${online ? "o" : "f"}${k}.${seq}`;
  const body = ctx.body(`xfsim ${wallMicros()} ${tag} `, size);
  return `<message to='${ctx.userName(to)}@${ctx.sc.server.domain}' type='chat' id='${tag}'><body>${body}</body></message>`;
}

/** A message to user k: a bounce (of its own, or not), or one of the run's, counted and timed. */
export function readMessage(ctx: Ctx, k: number, xml: string): void {
  if (attr(xml, "type") === "error") {
    const mine = /^o(\d+)\.(\d+)$/.exec(attr(xml, "id") ?? "");
    if (mine && Number(mine[1]) === k) ctx.bounced(ctx.msgKey(k, Number(mine[2])));
    ctx.rec.error(`message-error:${firstChild(xml.slice(xml.indexOf("<error")), [])?.name ?? "unknown"}`);
    return;
  }
  const i = xml.indexOf("<body>xfsim ");
  if (i < 0) return;
  const m = /^(\d+) ([of])(\d+)\.(\d+) /.exec(xml.slice(i + 12, i + 64));
  if (!m) return;
  const stamp = Number(m[1]);
  // An earlier run on the same accounts left it offline: its sender and count would pass for this run's.
  if (stamp < ctx.runStartMicros) return void ctx.rec.count("msgs_earlier_run");
  if (!ctx.received(ctx.msgKey(Number(m[3]), Number(m[4])), m[2] === "o")) return;
  if (xml.includes("urn:xmpp:delay")) ctx.rec.count("msgs_received_delayed");
  else {
    ctx.rec.count("msgs_received");
    ctx.rec.latency("message", (wallMicros() - stamp) / 1000);
  }
}

/** Keys and send times of a user's latest messages to online users, sent without resumption. */
export class RecentSends {
  private list: number[] = [];

  /** Message `key` was sent at `now` (performance.now() ms); those older than UNCONFIRMED_MS go. */
  add(key: number, now: number): void {
    const cut = now - UNCONFIRMED_MS;
    let drop = 0;
    while (drop < this.list.length && this.list[drop + 1]! < cut) drop += 2;
    if (drop) this.list.splice(0, drop);
    this.list.push(key, now);
  }

  /** The connection is gone: the messages the server may not have read. The list starts afresh. */
  take(): number[] {
    const keys: number[] = [];
    if (!this.list.length) return keys;
    const since = performance.now() - UNCONFIRMED_MS;
    for (let i = 0; i < this.list.length; i += 2) if (this.list[i + 1]! >= since) keys.push(this.list[i]!);
    this.list = [];
    return keys;
  }
}
