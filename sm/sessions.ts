// The session registry: users by bare JID, each with sessions by resource.
import { type Element, clone, parse } from "ltx";
import type { Jid } from "../lib/jid.js";
import type { Logger } from "../lib/log.js";
import type { ResumeLog } from "./resumption.js";

export class Session {
  /**
   * The last available presence broadcast, as its XML without 'from' (the
   * session's full JID); null while unavailable. Text, not the element:
   * kept for as long as the session lives, an ltx element, its attributes
   * and children cost four times as much, and it is read only when a
   * contact probes or subscribes, or the session moves.
   */
  private presenceXml: string | null = null;
  priority = 0;
  /** Requested the roster, so it gets roster pushes (RFC 6121 §2.1.6). */
  interested = false;
  /** The highest STANZA seq accepted, and the highest taken with every one before it (protocol §2.5). */
  received = 0;
  taken = 0;
  /** Seqs taken out of order, above `taken`: their stanza's work ended before an earlier one's. */
  private tookAhead: Set<number> | null = null;
  /** XEP-0198 resumption that outlives the front end (protocol §2.6), once the client enabled it. */
  resumption: ResumeLog | null = null;
  /** The modules' state for this session (sm/session-state.ts): module name → JSON value; null while none set any. */
  moduleState: Record<string, unknown> | null = null;
  /** The client's SASL PLAIN voucher from START (protocol §2.8), base64; null for other logins and rebuilt sessions. */
  plainVoucher: string | null = null;

  constructor(
    /** The full JID bound. */
    readonly jid: Jid,
    /** The c2s holding the connection, and its name for the session (protocol §2). */
    public c2s: string,
    public sid: string,
    private readonly smLog: Logger,
  ) {}

  /** Sent available presence, and not unavailable since. */
  get isAvailable(): boolean {
    return this.presenceXml !== null;
  }

  /** The last available presence broadcast (from the full JID, no 'to'), a new element at each call; null while unavailable. */
  get presence(): Element | null {
    if (this.presenceXml === null) return null;
    const el = parse(this.presenceXml);
    el.attrs.from = this.jid.full;
    return el;
  }

  set presence(stanza: Element | null) {
    if (stanza === null) {
      this.presenceXml = null;
      return;
    }
    const kept = clone(stanza);
    delete kept.attrs.from;
    delete kept.attrs.to;
    // ltx writes a string of many pieces; one flat string of its own keeps no more than its bytes.
    this.presenceXml = Buffer.from(kept.toString(), "utf8").toString("utf8");
  }

  /** The bare JID: the user's key in the registry, the queue and the store. */
  get user(): string {
    return this.jid.bare;
  }

  get resource(): string {
    return this.jid.resource;
  }

  /** The work of STANZA `seq` has ended; true if that moved `taken`. */
  took(seq: number): boolean {
    if (seq <= this.taken) return false;
    if (seq !== this.taken + 1) {
      (this.tookAhead ??= new Set()).add(seq);
      return false;
    }
    this.taken = seq;
    while (this.tookAhead?.delete(this.taken + 1)) this.taken++;
    if (this.tookAhead?.size === 0) this.tookAhead = null;
    return true;
  }

  /**
   * A logger naming the session, made when something is logged: a pino
   * child kept per session would cost every idle session some 500 bytes.
   */
  get log(): Logger {
    return this.smLog.child({ sid: this.sid, jid: this.jid.full });
  }
}

/** What modules may read of the registry. */
export interface SessionView {
  /** A user's sessions, in bind order. */
  of(user: string): Session[];
  /** The session bound to a full JID. */
  get(jid: Jid): Session | undefined;
  /** A user's sessions that sent available presence. */
  available(user: string): Session[];
}

export class SessionRegistry implements SessionView {
  /**
   * Each user's sessions by resource. Memory: most users hold one session,
   * kept as it is; a Map is made for a second (a Map per user cost every
   * idle session some 200 bytes).
   */
  private readonly users = new Map<string, Session | Map<string, Session>>();
  /**
   * Each front end's sessions by sid: two lookups of strings the frame and
   * the session already hold, where one key joining them was a new string
   * to build, flatten and hash at every STANZA frame and every stanza's
   * has(), and a string more held for every session.
   */
  private readonly byConnection = new Map<string, Map<string, Session>>();
  /**
   * Each front end's name, one string for all its sessions: a name read
   * from a frame is a string of its own, some 24 bytes a session. The
   * farm's front ends, so a few.
   */
  private readonly c2sNames = new Map<string, string>();

  of(user: string): Session[] {
    const held = this.users.get(user);
    if (!held) return [];
    return held instanceof Session ? [held] : [...held.values()];
  }

  get(jid: Jid): Session | undefined {
    if (!jid.resource) return undefined;
    const held = this.users.get(jid.bare);
    if (held instanceof Session) return held.resource === jid.resource ? held : undefined;
    return held?.get(jid.resource);
  }

  available(user: string): Session[] {
    return this.of(user).filter((s) => s.isAvailable);
  }

  bySid(c2s: string, sid: string): Session | undefined {
    return this.byConnection.get(c2s)?.get(sid);
  }

  /** True while the session is registered (not ended or replaced). */
  has(session: Session): boolean {
    return this.byConnection.get(session.c2s)?.get(session.sid) === session;
  }

  all(): Session[] {
    const all: Session[] = [];
    for (const sessions of this.byConnection.values()) for (const session of sessions.values()) all.push(session);
    return all;
  }

  get size(): number {
    let n = 0;
    for (const sessions of this.byConnection.values()) n += sessions.size;
    return n;
  }

  add(session: Session): void {
    session.c2s = this.c2sName(session.c2s);
    const held = this.users.get(session.user);
    if (!held || (held instanceof Session && held.resource === session.resource)) this.users.set(session.user, session);
    else if (held instanceof Session) this.users.set(session.user, new Map([[held.resource, held], [session.resource, session]]));
    else held.set(session.resource, session);
    this.connectionsOf(session.c2s).set(session.sid, session);
  }

  /** The session's connection moved (an XEP-0198 resumption on another c2s). */
  move(session: Session, c2s: string, sid: string): void {
    this.unlink(session.c2s, session.sid);
    session.c2s = this.c2sName(c2s);
    session.sid = sid;
    this.connectionsOf(session.c2s).set(sid, session);
  }

  remove(session: Session): void {
    if (!this.has(session)) return;
    this.unlink(session.c2s, session.sid);
    const held = this.users.get(session.user);
    if (held === session) return void this.users.delete(session.user);
    if (!(held instanceof Map) || held.get(session.resource) !== session) return;
    held.delete(session.resource);
    // Back to the one session as it is.
    if (held.size === 1) this.users.set(session.user, held.values().next().value!);
  }

  private connectionsOf(c2s: string): Map<string, Session> {
    let sessions = this.byConnection.get(c2s);
    if (!sessions) this.byConnection.set(c2s, (sessions = new Map()));
    return sessions;
  }

  private unlink(c2s: string, sid: string): void {
    const sessions = this.byConnection.get(c2s);
    if (!sessions?.delete(sid) || sessions.size > 0) return;
    this.byConnection.delete(c2s);
  }

  private c2sName(name: string): string {
    const known = this.c2sNames.get(name);
    if (known !== undefined) return known;
    this.c2sNames.set(name, name);
    return name;
  }
}
