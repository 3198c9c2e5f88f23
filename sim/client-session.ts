// A simulated user's session once logged in (client.ts does the connection
// and the login): the scenario's actions run one after another, each until
// it has to wait (a reply, a think, the next chat message, a sync point),
// and the stanzas the server sends are answered and counted. It outlives a
// lost connection: after a new login or a resume it goes on with the action
// it was in.
import type { Action } from "./scenario.js";
import type { Sleeper } from "./wheel.js";
import type { Ctx, CtxClient } from "./client-ctx.js";
import { chatMessage, readMessage, RecentSends } from "./chat-messages.js";
import { enableXml, REQUEST, StreamManagement } from "./stream-management.js";
import { attr, unescapeXml } from "./xml-scan.js";
import { errorReplyXml } from "../lib/stanza-error.js";

const NS_CSI = "urn:xmpp:csi:0";

// What an active session waits for.
const W_NONE = 0;
const W_ROSTER = 1;
const W_SM = 2;
const W_THINK = 3;
const W_CHAT = 4;
const W_SYNC = 5;

/** The client a session belongs to: its wake-ups, its socket, its end. */
export interface SessionHost extends Sleeper, CtxClient {
  readonly ctx: Ctx;
  /** In session (not logging in, closing or done). */
  readonly active: boolean;
  write(s: string): void;
  close(cut: boolean): void;
  fail(kind: string): void;
}

export class ClientSession {
  readonly sm = new StreamManagement();
  /** Presence sent. */
  available = false;
  /** Sync points reached. */
  syncs = 0;
  /** Messages to online users the server may not have read, should the connection go (without resumption). */
  readonly recent = new RecentSends();
  /** The action running, and what it waits for. */
  private act = 0;
  private wait = W_NONE;
  /** When the pending wake-up is due, and when the roster was asked for; performance.now() ms. */
  private until = 0;
  private tRoster = 0;
  private chatNext = 0;
  private chatEnd = 0;
  private chatLeft = 0;
  /** Messages sent by this user. */
  private seq = 0;

  constructor(private readonly h: SessionHost) {}

  /** A stanza (counted for XEP-0198, kept until acknowledged with resumption, with an ack request every request_every). */
  send(s: string): void {
    this.h.write(s);
    if (this.sm.sent(s, this.h.ctx.smRequestEvery)) this.h.write(REQUEST);
  }

  goOnline(): void {
    if (this.available) return;
    this.available = true;
    this.send("<presence/>");
    this.h.ctx.wentOnline(this.h);
  }

  /** Runs actions from `act` until one has to wait. */
  run(): void {
    const h = this.h;
    const ctx = h.ctx;
    const actions = ctx.sc.actions;
    while (h.active) {
      const a: Action | undefined = actions[this.act];
      if (!a) return h.close(false);
      const now = performance.now();
      switch (a.type) {
        case "roster":
          this.wait = W_ROSTER;
          this.tRoster = now;
          this.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
          this.sleepUntil(now + ctx.sc.session.reply_timeout * 1000);
          return;
        case "presence":
          this.goOnline();
          this.act++;
          continue;
        case "inactive":
          // A nonza: never counted for XEP-0198.
          h.write(`<inactive xmlns='${NS_CSI}'/>`);
          this.act++;
          continue;
        case "sm":
          this.wait = W_SM;
          this.sm.wanted = true;
          if (a.resume) this.sm.queue = [];
          h.write(enableXml(a.resume));
          this.sleepUntil(now + ctx.sc.session.reply_timeout * 1000);
          return;
        case "think": {
          const secs = a.random ? -Math.log(1 - ctx.random()) * a.seconds : a.seconds;
          if (secs <= 0) {
            this.act++;
            continue;
          }
          this.wait = W_THINK;
          this.sleepUntil(now + secs * 1000);
          return;
        }
        case "chat": {
          const interval = 1000 / ctx.chatRate[this.act]!;
          this.wait = W_CHAT;
          this.chatLeft = a.count > 0 ? a.count : Infinity;
          this.chatEnd = a.duration > 0 ? now + a.duration * 1000 : Infinity;
          // A random phase, so that users released together do not send together.
          this.chatNext = now + ctx.random() * interval;
          this.sleepUntil(Math.min(this.chatNext, this.chatEnd));
          return;
        }
        case "sync":
          this.wait = W_SYNC;
          this.syncs++;
          ctx.reachedSync(h, ctx.syncPoint[this.act]!);
          return;
        case "close":
          return h.close(false);
      }
    }
  }

  /** Goes on with the next action. */
  next(): void {
    if (!this.h.active) return;
    this.h.gen++;
    this.wait = W_NONE;
    this.act++;
    this.run();
  }

  /** Back in session after a loss: carries on with the action it was in. */
  goOn(): void {
    const ctx = this.h.ctx;
    if (this.wait === W_SYNC) {
      // Still on the point's list unless it was released meanwhile.
      if (ctx.syncReleased(ctx.syncPoint[this.act]!)) this.next();
    } else if (this.wait === W_CHAT || this.wait === W_THINK) ctx.wheel.at(this.until, this.h);
    else {
      this.wait = W_NONE;
      this.run();
    }
  }

  sleepUntil(t: number): void {
    this.until = t;
    this.h.gen++;
    this.h.ctx.wheel.at(t, this.h);
  }

  /** The wheel's wake-up in session: a reply's timeout, the end of a think, the next chat message. */
  wake(): void {
    switch (this.wait) {
      case W_ROSTER:
        return this.h.fail("timeout:roster");
      case W_SM:
        return this.h.fail("timeout:sm-enable");
      case W_THINK:
        return this.next();
      case W_CHAT:
        return this.chatTurn();
    }
  }

  private chatTurn(): void {
    const h = this.h;
    const ctx = h.ctx;
    const now = performance.now();
    const a = ctx.sc.actions[this.act] as Extract<Action, { type: "chat" }>;
    if (now >= this.chatEnd || this.chatLeft <= 0 || ctx.chatsEnded) return this.next();
    const online = a.to === "online";
    const to = online ? ctx.online.pick(ctx.random, h.k) : ctx.online.pickOffline(ctx.random, h.k);
    if (to < 0) ctx.rec.count("msgs_no_target");
    else {
      this.send(chatMessage(ctx, h.k, this.seq, to, online, a.size));
      ctx.rec.count(online ? "msgs_sent" : "msgs_sent_offline");
      if (online && !this.sm.queue) this.recent.add(ctx.msgKey(h.k, this.seq), now);
      this.seq++;
    }
    this.chatLeft--;
    if (this.chatLeft <= 0) return this.next();
    this.chatNext += 1000 / ctx.chatRate[this.act]!;
    if (this.chatNext < now) this.chatNext = now; // fell behind: no burst to catch up
    this.sleepUntil(Math.min(this.chatNext, this.chatEnd));
  }

  /** A stanza or nonza while the session is active or closing. */
  stanza(name: string, xml: string): void {
    const h = this.h;
    const ctx = h.ctx;
    const sm = this.sm;
    switch (name) {
      case "message":
        sm.received();
        return readMessage(ctx, h.k, xml);
      case "presence":
        sm.received();
        return;
      case "iq": {
        sm.received();
        const type = attr(xml, "type");
        const id = attr(xml, "id");
        if ((type === "result" || type === "error") && id === "r" && this.wait === W_ROSTER) {
          if (type === "result") {
            ctx.rec.count("rosters");
            ctx.rec.latency("roster", performance.now() - this.tRoster);
          } else ctx.rec.error("roster-error");
          return this.next();
        }
        if (type === "get" || type === "set") {
          // Pings and roster pushes get a result; anything else is not supported here.
          const from = attr(xml, "from");
          const to = from ? ` to='${from}'` : "";
          if (xml.includes("urn:xmpp:ping") || xml.includes("jabber:iq:roster")) this.send(`<iq type='result' id='${id ?? ""}'${to}/>`);
          // The error reply names no 'from' (the stanza's 'to' is not handed over): the farm stamps ours.
          else this.send(errorReplyXml({ name: "iq", attrs: { id: id && unescapeXml(id), from: from && unescapeXml(from) } }, "service-unavailable"));
        }
        return;
      }
      case "enabled":
        sm.enabled(attr(xml, "resume"), attr(xml, "id"));
        if (this.wait !== W_SM) return;
        sm.in = 0;
        sm.out = 0;
        ctx.rec.count("sm_enabled");
        return this.next();
      case "failed":
        if (this.wait !== W_SM) return;
        sm.wanted = false;
        ctx.rec.error("sm-failed");
        return this.next();
      case "r":
        if (sm.in < 0) return;
        h.write(sm.answer());
        ctx.rec.count("sm_acks_sent");
        return;
      case "a":
        ctx.rec.count("sm_acks_received");
        return sm.ack(Number(attr(xml, "h")));
    }
  }
}
