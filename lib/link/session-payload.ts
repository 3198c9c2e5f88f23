// The session layer between a c2s and an sm (docs/protocol.md §2): the
// payload of a ROUTE frame, which the router never reads.
// JIDs stay strings here: a receiver that acts on one parses it (parseJid),
// whatever form its sender promised (protocol §2).
import { arrayOf, boolean, bytesAtMost, count, isObject, laidFlat, nullable, object, optional, recordOf, string, type Shape } from "./shape.js";

export enum SessionOp {
  Start = 1,
  Started = 2,
  StartFailed = 3,
  Stanza = 4,
  End = 5,
  Deliver = 6,
  Close = 7,
  Forward = 8,
  Rebuild = 9,
  Takeover = 10,
  Handoff = 11,
  Written = 12,
  Taken = 13,
  Delivered = 14,
  Forwarded = 15,
  Resumable = 16,
  ClientAcked = 17,
  Resume = 18,
  Sessions = 19,
  SessionState = 20,
  ClientState = 21,
  Vouchers = 22,
}

/** A session's module state (protocol §2, SESSION_STATE): module name → its JSON value, opaque to the c2s. */
export type ModuleState = Record<string, unknown>;

export interface StartMeta {
  sid: string;
  /** Bare JID, or full JID when the client asked for a resource. */
  jid: string;
  ip: string;
  secure: boolean;
  /**
   * The client logged in with SASL PLAIN: the password's voucher (protocol
   * §1.6, `expect`), base64, which the sm keeps for the session so that the
   * other front ends can take the client without a PBKDF2 should this one
   * be lost (§2.8).
   */
  plain?: string;
}
/** A session that already exists on the c2s, re-established on its (new) sm. */
export interface RebuildMeta {
  sid: string;
  /** The bound full JID. */
  jid: string;
  ip: string;
  secure: boolean;
  /** The client fetched its roster (RFC 6121 §2.1.6), so it gets roster pushes. */
  interested: boolean;
  /** An XEP-0198 resumption on another c2s: the session that this one takes over. */
  replaces?: { c2s: string; sid: string };
  /** The highest STANZA `seq` of this session that an sm took (§2.5): the rebuilt session expects the next. */
  seq?: number;
  /** The session is resumable (XEP-0198): what its sm keeps so that it outlives its front end (§2.6). */
  resume?: ResumableState;
  /** The last SESSION_STATE the sm sent for this session; absent: `{}`. */
  state?: ModuleState;
}
/** What an sm needs to keep a resumable session's stream state (§2.6). */
export interface ResumableState {
  /** The resumption id the client was given. */
  id: string;
  /** Seconds the session may wait for its client, and the most stanzas and bytes it may hold unacknowledged. */
  max: number;
  stanzas: number;
  bytes: number;
  /** The client's stanzas counted so far (its 'h' as the front end reports it), up to the last STANZA taken. */
  inbound: number;
  /** Stanzas written to the client so far, and the highest DELIVER `n` among them. */
  outbound: number;
  lastN: number;
}
/** c2s → sm (§2.6): the client enabled resumption; counting starts now. */
export interface ResumableMeta extends Omit<ResumableState, "inbound" | "outbound" | "lastN"> {
  sid: string;
}
/** c2s → sm (§2.6): per sid, what its resumable client acknowledged, and what the front end wrote that no DELIVER numbered. */
export interface ClientAckedMeta {
  /** sid → [the client's 'h', the highest DELIVER `n` that count covers (0: none)]. */
  acked?: Record<string, [number, number]>;
  /** The same laid flat, to a receiver whose `info` has flatAcks (as TAKEN's): sid, h, n, sid, h, n, … */
  acks?: (string | number)[];
  /** sid → the positions (counted as the client counts) of stanzas written that carried no `n`. */
  local?: Record<string, number[]>;
  /** sid → `n`s of DELIVERs dropped as copies of one delivered before, never written. */
  skipped?: Record<string, number[]>;
}
/**
 * The largest SESSION_STATE meta a c2s keeps: the state travels again in
 * REBUILD's and HANDOFF's meta beside their other fields, within metaLen's 16 bits.
 */
export const MAX_SESSION_STATE_META = 16 * 1024;
/** sm → c2s (protocol §2): the session's whole module state, sent when it changes; the c2s keeps the latest. */
export interface SessionStateMeta {
  sid: string;
  state: ModuleState;
}
/** c2s → sm (protocol §2): the client said it is active or inactive (XEP-0352); the sm's modules decide what that changes. */
export interface ClientStateMeta {
  sid: string;
  active: boolean;
}
/** sm → c2s (§2.8): the PLAIN vouchers of the sessions of a front end that was lost. */
export interface VouchersMeta {
  /** The front end lost. */
  from: string;
  /** Bare JID → voucher, base64. */
  plain: Record<string, string>;
}
/** sm → c2s: the sessions this sm holds for the receiver, which ENDs those it does not hold (§2.5). */
export interface SessionsMeta {
  sids: string[];
}
/** c2s → sm (§2.6): a client resumes, here, a session whose front end is gone. */
export interface ResumeMeta {
  /** The resuming connection's sid. */
  sid: string;
  previd: string;
  /** The client's 'h': stanzas it received. */
  h: number;
}
/** c2s → c2s: a client resumed here (XEP-0198) the session `sid` that the receiver holds. */
export interface TakeoverMeta {
  sid: string;
  previd: string;
  user: string;
  /** The resuming connection's sid on the sender. */
  newSid: string;
}
/** The answer to TAKEOVER; with `ok`, the session's state, its unacknowledged stanzas in the xml part. */
export interface HandoffMeta {
  /** The resuming connection's sid on the receiver. */
  sid: string;
  ok: boolean;
  jid?: string;
  oldSid?: string;
  inbound?: number;
  outbound?: number;
  /** Byte length of each unacknowledged stanza, in order, in the xml part. */
  lengths?: number[];
  presence?: string | null;
  interested?: boolean;
  /** For each unacknowledged stanza, in order: its DELIVER's `confirm`, 0 if it had none. */
  confirms?: number[];
  /** The session's last STANZA `seq` (§2.5). */
  seq?: number;
  /** The STANZAs no sm has taken yet, in order, their XML after the unacknowledged stanzas: `[seq, h, byte length]`, `h` being the client's count of stanzas that it makes up. */
  pending?: [number, number, number][];
  /** The `origin`s of the stanzas delivered lately, for the receiver to drop them if they come again. */
  recent?: string[];
  /** For each unacknowledged stanza, in order: its DELIVER's `n` (§2.6), 0 if it had none. */
  ns?: number[];
  /** The highest DELIVER `n` the session was written (§2.6). */
  lastN?: number;
  /** From the sm (§2.6): the session is already moved to the receiver; no REBUILD follows. */
  moved?: boolean;
  /** The session's module state (SESSION_STATE), which the receiver keeps from now on; absent: `{}`. */
  state?: ModuleState;
}
export interface StartedMeta {
  sid: string;
  jid: string;
}
export interface FailureMeta {
  sid: string;
  condition: string;
  text?: string;
}
export interface SidMeta {
  sid: string;
  /** Set by an sm that passed on a STANZA for a user it no longer owns (at most once). */
  rerouted?: boolean;
}
/** A client's stanza, numbered in its session (§2.5). */
export interface StanzaMeta extends SidMeta {
  /** 1 for the session's first STANZA, then one more each; absent from a sender that does not number them. */
  seq?: number;
  /** A resumable session's (§2.6): the client's count of stanzas up to this one; absent on one the front end made. */
  h?: number;
}
/** c2s → sm: the connection is gone. */
export interface EndMeta {
  sid: string;
  /**
   * Its front end stops, and the session is resumable (XEP-0198): it waits
   * for its client to resume it on another front end, as a lost front end's
   * (§2.6), instead of ending. An sm of an earlier version ends it.
   */
  resume?: boolean;
}
/**
 * sm → c2s (§2.5): the STANZAs it took, and the sessions it does not hold.
 * The flat form goes only to a receiver whose `info` has `flatAcks`.
 */
export interface TakenMeta {
  /** sid → the highest `seq` taken, every lower one taken too. */
  taken?: Record<string, number>;
  /** The flat form: sid, seq, sid, seq, … in the order taken; a sid may come again, with a higher seq. */
  seqs?: (string | number)[];
  /** sids of sessions this sm does not hold: the c2s sends REBUILD, then again what was not taken. */
  unknown?: string[];
}
/**
 * c2s → sm (§2.5): the DELIVERs with an `origin` that reached it, by their
 * `num`, or, those that came without one (an sm of an earlier version), by
 * session and origin (the flat form as for TAKEN).
 */
export interface DeliveredMeta {
  /** Ranges of `num`s laid flat, each inclusive: from, to, from, to, … */
  nums?: number[];
  /** sid → their origins. */
  got?: Record<string, string[]>;
  /** The flat form: sid, origin, sid, origin, … */
  delivered?: string[];
}
/** sm → sm (§2.5): the FORWARDs with an `origin` that it took. */
export interface ForwardedMeta {
  origins: string[];
}
/** A stanza routed again or passed to another sm, with the identity that lets its recipients drop a copy they already have (§2.5). */
export interface ForwardMeta {
  origin?: string;
}

/** A stanza for the client (protocol §2.4 for `confirm` and `last`). */
export interface DeliverMeta {
  sid: string;
  /** The stanza is an offline message the sm keeps until the c2s reports it delivered: its store id. */
  confirm?: number;
  /** The last stanza of a batch of offline messages: the sm sends no more until it hears of this one. */
  last?: boolean;
  /** The stanza's identity (§2.5): one this session already got under it is dropped. */
  origin?: string;
  /** To a resumable session (§2.6): the sm's number for it, one more each DELIVER. */
  n?: number;
  /** With an `origin` (§2.5): the sm's number for it among its DELIVERs to this front end, which DELIVERED names. */
  num?: number;
}
/** c2s → sm: the offline messages of this session up to store id `confirm` reached the client. */
export interface WrittenMeta {
  sid: string;
  confirm: number;
}

/** The meta object each op carries. */
export interface SessionMetaByOp {
  [SessionOp.Start]: StartMeta;
  [SessionOp.Started]: StartedMeta;
  [SessionOp.StartFailed]: FailureMeta;
  [SessionOp.Stanza]: StanzaMeta;
  [SessionOp.End]: EndMeta;
  [SessionOp.Deliver]: DeliverMeta;
  [SessionOp.Close]: FailureMeta;
  [SessionOp.Forward]: ForwardMeta;
  [SessionOp.Rebuild]: RebuildMeta;
  [SessionOp.Takeover]: TakeoverMeta;
  [SessionOp.Handoff]: HandoffMeta;
  [SessionOp.Written]: WrittenMeta;
  [SessionOp.Taken]: TakenMeta;
  [SessionOp.Delivered]: DeliveredMeta;
  [SessionOp.Forwarded]: ForwardedMeta;
  [SessionOp.Resumable]: ResumableMeta;
  [SessionOp.ClientAcked]: ClientAckedMeta;
  [SessionOp.Resume]: ResumeMeta;
  [SessionOp.Sessions]: SessionsMeta;
  [SessionOp.SessionState]: SessionStateMeta;
  [SessionOp.ClientState]: ClientStateMeta;
  [SessionOp.Vouchers]: VouchersMeta;
}

export type SessionMessage = {
  [K in SessionOp]: { op: K; meta: SessionMetaByOp[K]; xml: Buffer };
}[SessionOp];

const EMPTY = Buffer.alloc(0);

/** The byte length of a payload's meta. */
export function sessionMetaLength(payload: Buffer): number {
  return payload.readUInt16BE(1);
}

export function encodeSessionPayload<K extends SessionOp>(
  op: K,
  meta: SessionMetaByOp[K],
  xml: Buffer | string = EMPTY,
): Buffer {
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const xmlBytes = typeof xml === "string" ? Buffer.from(xml, "utf8") : xml;
  const out = Buffer.allocUnsafe(3 + metaBytes.length + xmlBytes.length);
  out.writeUInt8(op, 0);
  out.writeUInt16BE(metaBytes.length, 1);
  metaBytes.copy(out, 3);
  xmlBytes.copy(out, 3 + metaBytes.length);
  return out;
}

/** An origin: short enough that the frames carrying it stay well within their header room. */
const origin = optional(bytesAtMost(1024));
const triple = (v: unknown): v is [number, number, number] => Array.isArray(v) && v.length === 3 && v.every(count);
const failureMeta = object({ sid: string, condition: string, text: optional(string) });

/** The shape of each op's meta, checked on receipt: a peer's mistake costs the frame, not the receiver. */
const META_SHAPES: { [K in SessionOp]: Shape<SessionMetaByOp[K]> } = {
  [SessionOp.Start]: object({ sid: string, jid: string, ip: string, secure: boolean, plain: optional(string) }),
  [SessionOp.Started]: object({ sid: string, jid: string }),
  [SessionOp.StartFailed]: failureMeta,
  [SessionOp.Stanza]: object({ sid: string, rerouted: optional(boolean), seq: optional(count), h: optional(count) }),
  [SessionOp.End]: object({ sid: string, resume: optional(boolean) }),
  [SessionOp.Deliver]: object({ sid: string, confirm: optional(count), last: optional(boolean), origin, n: optional(count), num: optional(count) }),
  [SessionOp.Close]: failureMeta,
  [SessionOp.Forward]: object({ origin }),
  [SessionOp.Rebuild]: object({
    sid: string,
    jid: string,
    ip: string,
    secure: boolean,
    interested: boolean,
    replaces: optional(object({ c2s: string, sid: string })),
    seq: optional(count),
    resume: optional(object({ id: string, max: count, stanzas: count, bytes: count, inbound: count, outbound: count, lastN: count })),
    state: optional(isObject),
  }),
  [SessionOp.Takeover]: object({ sid: string, previd: string, user: string, newSid: string }),
  [SessionOp.Handoff]: object({
    sid: string,
    ok: boolean,
    jid: optional(string),
    oldSid: optional(string),
    inbound: optional(count),
    outbound: optional(count),
    lengths: optional(arrayOf(count)),
    presence: optional(nullable(string)),
    interested: optional(boolean),
    confirms: optional(arrayOf(count)),
    seq: optional(count),
    pending: optional(arrayOf(triple)),
    recent: optional(arrayOf(string)),
    ns: optional(arrayOf(count)),
    lastN: optional(count),
    moved: optional(boolean),
    state: optional(isObject),
  }),
  [SessionOp.Written]: object({ sid: string, confirm: count }),
  [SessionOp.Taken]: eitherOf(object({ taken: optional(recordOf(count)), seqs: optional(laidFlat<string | number>(string, count)), unknown: optional(arrayOf(string)) }), "taken", "seqs"),
  [SessionOp.Delivered]: eitherOf(
    object({ nums: optional(laidFlat(count, count)), got: optional(recordOf(arrayOf(string))), delivered: optional(laidFlat(string, string)) }),
    "nums",
    "got",
    "delivered",
  ),
  [SessionOp.Forwarded]: object({ origins: arrayOf(string) }),
  [SessionOp.Resumable]: object({ sid: string, id: string, max: count, stanzas: count, bytes: count }),
  [SessionOp.ClientAcked]: object({
    acked: optional(recordOf((v): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every(count))),
    acks: optional(laidFlat<string | number>(string, count, count)),
    local: optional(recordOf(arrayOf(count))),
    skipped: optional(recordOf(arrayOf(count))),
  }),
  [SessionOp.Resume]: object({ sid: string, previd: string, h: count }),
  [SessionOp.Sessions]: object({ sids: arrayOf(string) }),
  [SessionOp.SessionState]: object({ sid: string, state: isObject }),
  [SessionOp.ClientState]: object({ sid: string, active: boolean }),
  [SessionOp.Vouchers]: object({ from: string, plain: recordOf(string) }),
};

/** Reads a session payload; throws when it is malformed or its meta does not fit its op. */
export function decodeSessionPayload(payload: Buffer): SessionMessage {
  if (payload.length < 3) throw new Error("session payload too short");
  const op = payload.readUInt8(0);
  if (!(op in SessionOp)) throw new Error(`unknown session op ${op}`);
  const metaLen = payload.readUInt16BE(1);
  if (3 + metaLen > payload.length) throw new Error("session meta overruns payload");
  const meta: unknown = JSON.parse(payload.toString("utf8", 3, 3 + metaLen));
  if (!META_SHAPES[op as SessionOp](meta)) throw new Error(`session op ${op}: meta of the wrong shape`);
  return { op, meta, xml: payload.subarray(3 + metaLen) } as SessionMessage;
}

/** `shape`, with one of `fields` at least (the forms of an acknowledgement). */
function eitherOf<T extends object>(shape: Shape<T>, ...fields: (keyof T)[]): Shape<T> {
  return (v): v is T => shape(v) && fields.some((f) => v[f] !== undefined);
}

/**
 * A TAKEN for `c2s`: `seqs` laid flat (sid, seq, …), in the flat form when
 * the receiver reads it. A table keyed by session ids would cost each
 * reader a new hidden class and an interned string per session (V8).
 */
export function takenPayload(seqs: (string | number)[], unknown: string[], flat: boolean): Buffer {
  const extra = unknown.length > 0 ? { unknown } : {};
  if (flat) return encodeSessionPayload(SessionOp.Taken, { seqs, ...extra });
  const taken: Record<string, number> = {};
  for (let i = 0; i < seqs.length; i += 2) taken[seqs[i] as string] = seqs[i + 1] as number;
  return encodeSessionPayload(SessionOp.Taken, { taken, ...extra });
}

/** Each session and seq a TAKEN names, in order, whichever form it came in. */
export function eachTaken(meta: TakenMeta, each: (sid: string, seq: number) => void): void {
  const seqs = meta.seqs;
  if (seqs) for (let i = 0; i < seqs.length; i += 2) each(seqs[i] as string, seqs[i + 1] as number);
  if (meta.taken) for (const [sid, seq] of Object.entries(meta.taken)) each(sid, seq);
}

/** Counts `num` into the ranges of a DELIVERED (from, to, …): the last range grows when it comes next, as it does from one sm. */
export function addDeliveredNum(ranges: number[], num: number): void {
  const last = ranges.length - 1;
  if (last > 0 && ranges[last] === num - 1) ranges[last] = num;
  else ranges.push(num, num);
}

/** A DELIVERED of DELIVERs that came without a `num`: `pairs` laid flat (sid, origin, …), in the flat form when the receiver reads it. */
export function deliveredPayload(pairs: string[], flat: boolean): Buffer {
  if (flat) return encodeSessionPayload(SessionOp.Delivered, { delivered: pairs });
  const got: Record<string, string[]> = {};
  for (let i = 0; i < pairs.length; i += 2) (got[pairs[i]!] ??= []).push(pairs[i + 1]!);
  return encodeSessionPayload(SessionOp.Delivered, { got });
}

/** Each session and origin a DELIVERED names, in either of its forms without `num`s. */
export function eachDelivered(meta: DeliveredMeta, each: (sid: string, origin: string) => void): void {
  const pairs = meta.delivered;
  if (pairs) for (let i = 0; i < pairs.length; i += 2) each(pairs[i]!, pairs[i + 1]!);
  if (meta.got) for (const [sid, origins] of Object.entries(meta.got)) for (const origin of origins) each(sid, origin);
}

/** A CLIENT_ACKED of `acks` laid flat (sid, h, n, …), in the flat form when the receiver reads it. */
export function clientAckedPayload(acks: (string | number)[], flat: boolean): Buffer {
  if (flat) return encodeSessionPayload(SessionOp.ClientAcked, { acks });
  const acked: Record<string, [number, number]> = {};
  for (let i = 0; i < acks.length; i += 3) acked[acks[i] as string] = [acks[i + 1] as number, acks[i + 2] as number];
  return encodeSessionPayload(SessionOp.ClientAcked, { acked });
}

/** Each session's acknowledgement in a CLIENT_ACKED, whichever form it came in. */
export function eachClientAck(meta: ClientAckedMeta, each: (sid: string, h: number, n: number) => void): void {
  const acks = meta.acks;
  if (acks) for (let i = 0; i < acks.length; i += 3) each(acks[i] as string, acks[i + 1] as number, acks[i + 2] as number);
  if (meta.acked) for (const [sid, [h, n]] of Object.entries(meta.acked)) each(sid, h, n);
}
