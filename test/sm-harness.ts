// Drives a SessionManager through a fake RoutePort that records every frame,
// over a real store (in-memory SQLite unless a test gives another): no network.
import { randomBytes } from "node:crypto";
import { parse, type Element } from "ltx";
import { pino } from "pino";
import { bareOf } from "../lib/jid.js";
import { DEFAULT_MAX_FRAME, HEADER_ALLOWANCE, routeLength } from "../lib/link/frames.js";
import type { Member, RoutePort } from "../lib/link/member.js";
import {
  SessionOp,
  decodeSessionPayload,
  encodeSessionPayload,
  type SessionMessage,
} from "../lib/link/session-payload.js";
import type { SmLimits } from "../sm/limits.js";
import type { EnabledModule } from "../sm/module-config.js";
import { SessionManager } from "../sm/session-manager.js";
import { SqliteStore } from "../xdb-sql/sqlite-store.js";
import { rosterItem } from "./harness/roster-item.js";
import type { Credentials } from "../lib/sasl/scram-credentials.js";
import type { RosterItem, Store } from "../xdb-sql/store.js";

export const DOMAIN = "example.com";

export type Frame = { to: string; key: string } & SessionMessage;

export class FakePort implements RoutePort {
  readonly frames: Frame[] = [];
  /** Frames refused as over maxFrame, as a LinkClient refuses them: their sizes. */
  readonly refused: number[] = [];
  /** Which sm owns a key; this one unless a test says otherwise. */
  owner: (key: string) => string | undefined = () => this.name;

  constructor(
    readonly name: string,
    readonly maxFrame = DEFAULT_MAX_FRAME,
  ) {}

  send(to: string, key: string, payload: Buffer): boolean {
    const length = routeLength(to, this.name, key, payload.length);
    if (length > this.maxFrame) {
      this.refused.push(length);
      return false;
    }
    this.frames.push({ to, key, ...decodeSessionPayload(payload) });
    return true;
  }

  smOwnerOf(key: string): string | undefined {
    return this.owner(key);
  }

  /** Removes and returns the recorded frames that match. */
  take(match: (f: Frame) => boolean = () => true): Frame[] {
    const taken = this.frames.filter(match);
    for (const f of taken) this.frames.splice(this.frames.indexOf(f), 1);
    return taken;
  }
}

function creds(): Credentials {
  const keys = { salt: randomBytes(16), iterations: 4096, storedKey: randomBytes(32), serverKey: randomBytes(32) };
  return { "SHA-1": keys, "SHA-256": keys };
}

export class Harness {
  private sids = 0;

  constructor(
    readonly sm: SessionManager,
    readonly port: FakePort,
    readonly store: Store,
  ) {}

  /** `maxFrame`: the link's, which also sets the sm's largest stanza (limits.stanzaBytes) unless given. */
  static async create(
    users: string[] = [],
    opts: { maxSessionsPerUser?: number; c2sGraceMs?: number; limits?: Partial<SmLimits>; maxFrame?: number; settleMs?: number; modules?: readonly EnabledModule[]; store?: Store } = {},
  ): Promise<Harness> {
    const { store = new SqliteStore(":memory:"), ...rest } = opts;
    await store.migrate();
    for (const user of users) await store.createAccount(`${user}@${DOMAIN}`, creds());
    const { maxFrame, ...smOpts } = rest;
    const port = new FakePort("sm-1", maxFrame);
    if (maxFrame !== undefined) smOpts.limits = { stanzaBytes: maxFrame - HEADER_ALLOWANCE, ...smOpts.limits };
    const sm = new SessionManager({
      name: "sm-1",
      domains: [DOMAIN],
      store,
      port,
      log: pino({ level: "silent" }),
      // Unit tests see a vanished c2s's sessions end at once, and a message for a user without a session go offline at once.
      c2sGraceMs: 0,
      settleMs: 0,
      ...smOpts,
    });
    return new Harness(sm, port, store);
  }

  async close(): Promise<void> {
    await this.sm.close();
    await this.store.close();
  }

  async route(from: string, key: string, payload: Buffer): Promise<void> {
    this.sm.onRoute(from, key, payload);
    await this.sm.idle();
  }

  /** The router's member table: c2s-N and sm-N by their names, a name with a dot an XEP-0114 component; `info` by name. */
  async members(names: string[], info: Record<string, Record<string, unknown>> = {}): Promise<void> {
    const role = (name: string): Member["role"] => (name.includes(".") ? "component" : name.startsWith("c2s") ? "c2s" : "sm");
    const members: Member[] = names.map((name) => ({ name, role: role(name), info: info[name] ?? {} }));
    this.sm.onMembers(members);
    await this.sm.idle();
  }

  /** Sends START for a session and returns its answer frame. */
  async startFrame(jid: string, c2s = "c2s-1", sid = `s${++this.sids}`): Promise<Frame> {
    const key = bareOf(jid)!;
    await this.route(c2s, key, encodeSessionPayload(SessionOp.Start, { sid, jid, ip: "127.0.0.1", secure: true }));
    const [answer] = this.port.take((f) => f.to === c2s && "sid" in f.meta && f.meta.sid === sid);
    if (!answer) throw new Error(`no answer to START for ${jid}`);
    return answer;
  }

  /** Binds a session; the client's frames are then read through the returned Client. */
  async connect(jid: string, c2s = "c2s-1"): Promise<Client> {
    const sid = `s${++this.sids}`;
    const answer = await this.startFrame(jid, c2s, sid);
    if (answer.op !== SessionOp.Started) throw new Error(`START for ${jid} failed: ${JSON.stringify(answer.meta)}`);
    return new Client(this, c2s, sid, answer.meta.jid);
  }

  /** Sets a roster item directly in the store. */
  async rosterItem(user: string, contact: string, item: Partial<RosterItem>): Promise<void> {
    await this.store.putRosterItem(`${user}@${DOMAIN}`, rosterItem(`${contact}@${DOMAIN}`, item));
  }

  /** Makes two users subscribed to each other's presence. */
  async mutual(a: string, b: string): Promise<void> {
    await this.rosterItem(a, b, { subscription: "both" });
    await this.rosterItem(b, a, { subscription: "both" });
  }
}

export class Client {
  constructor(
    readonly h: Harness,
    readonly c2s: string,
    readonly sid: string,
    readonly jid: string,
  ) {}

  get bare(): string {
    return bareOf(this.jid)!;
  }

  /** Sends a stanza as the c2s does: 'from' stamped with the session's full JID. */
  async send(xml: string): Promise<void> {
    const el = parse(xml);
    el.attrs.from = this.jid;
    await this.sendRaw(el.toString());
  }

  /** Sends bytes exactly as given (they must already carry the right 'from'); numbered with `seq` (protocol §2.5) if given. */
  async sendRaw(xml: string, seq?: number): Promise<void> {
    const meta = seq === undefined ? { sid: this.sid } : { sid: this.sid, seq };
    await this.h.route(this.c2s, this.bare, encodeSessionPayload(SessionOp.Stanza, meta, xml));
  }

  /** Sends a stanza numbered `seq`, as a c2s does (protocol §2.5). */
  async sendNumbered(xml: string, seq: number): Promise<void> {
    const el = parse(xml);
    el.attrs.from = this.jid;
    await this.sendRaw(el.toString(), seq);
  }

  async end(): Promise<void> {
    await this.h.route(this.c2s, this.bare, encodeSessionPayload(SessionOp.End, { sid: this.sid }));
  }

  /** Reports, as the c2s does, that this session's offline messages up to store id `confirm` reached the client. */
  async written(confirm: number): Promise<void> {
    await this.h.route(this.c2s, this.bare, encodeSessionPayload(SessionOp.Written, { sid: this.sid, confirm }));
  }

  /** Removes and returns every frame sent to this session. */
  frames(): Frame[] {
    return this.h.port.take((f) => f.to === this.c2s && "sid" in f.meta && f.meta.sid === this.sid);
  }

  /** Removes and returns the stanzas delivered to this session, parsed. */
  received(): Element[] {
    return this.frames()
      .filter((f) => f.op === SessionOp.Deliver)
      .map((f) => parse(f.xml.toString("utf8")));
  }

  /** Sends an iq and returns the stanzas received meanwhile. */
  async request(xml: string): Promise<Element[]> {
    this.received();
    await this.send(xml);
    return this.received();
  }

  /** Sends initial presence (optionally with a priority) and returns what it received meanwhile. */
  async online(priority?: number): Promise<Element[]> {
    await this.send(priority === undefined ? "<presence/>" : `<presence><priority>${priority}</priority></presence>`);
    return this.received();
  }
}

/** The error condition of an error stanza. */
export function conditionOf(el: Element): string | undefined {
  return el
    .getChild("error")
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name !== "text")?.name;
}
