// What the sm's parts share: its identity, the store and the link, the
// sessions, the users' queues, the hook chains, and the bookkeeping of
// acknowledged frames (protocol §2.5). The parts (link adapter, session
// lifecycle, stanza router, iq requests, module loader) each hold this one
// object; SessionManager (sm/session-manager.ts) makes it and ties them.
import type { Element } from "ltx";
import type { Logger } from "../lib/log.js";
import { LogThrottle } from "../lib/log-bounds.js";
import { SessionOp, decodeSessionPayload, encodeSessionPayload, type SessionMessage } from "../lib/link/session-payload.js";
import type { RoutePort } from "../lib/link/member.js";
import { AckBatch } from "../lib/link/ack-batch.js";
import { isError } from "../lib/stanza-error.js";
import type { Store } from "../xdb-sql/store.js";
import { Hooks } from "./hooks.js";
import { DEFAULT_LIMITS, type SmLimits } from "./limits.js";
import { KeyedQueue } from "./queue.js";
import { SessionRegistry } from "./sessions.js";
import { FrameTooLargeError } from "./stanza.js";
import { TakenAcks } from "./taken-acks.js";
import { Unacknowledged } from "./unacknowledged.js";

/** The text of the error that answers a stanza refused by a full queue. */
export const QUEUE_FULL = "too many stanzas are waiting for this account; try again later";
/** Malformed session payloads write one log line per this interval; the next line counts the rest. */
const BAD_PAYLOAD_LOG_INTERVAL_MS = 10_000;
/** Origins one FORWARDED names at most, so that its meta stays within 64 KiB. */
const FORWARD_ACKS_PER_FRAME = 500;

export interface SmContextOptions {
  name: string;
  domains: string[];
  store: Store;
  port: RoutePort;
  log: Logger;
  limits?: Partial<SmLimits>;
}

export class SmContext {
  readonly name: string;
  readonly domains: ReadonlySet<string>;
  readonly store: Store;
  readonly port: RoutePort;
  readonly log: Logger;
  readonly limits: Readonly<SmLimits>;
  readonly registry = new SessionRegistry();
  readonly hooks = new Hooks();
  readonly queue: KeyedQueue;
  readonly acks: TakenAcks;
  /** DELIVERs and FORWARDs waiting for their receiver to have them (§2.5). */
  readonly unacked: Unacknowledged;
  /** FORWARDED to the sms whose FORWARDs were taken here. */
  readonly forwardAcks: AckBatch<string[]>;
  /** The linked sms' names: a FORWARD from one of them is acknowledged. */
  sms = new Set<string>();
  /** Domains of the linked XEP-0114 components, reached through the router. */
  components = new Set<string>();
  /** Set once close() began: nothing new starts. */
  closed = false;
  /** Message stanzas routed since the process started (its load report, protocol §1.6). */
  messagesRouted = 0;
  private readonly badPayloads = new LogThrottle(BAD_PAYLOAD_LOG_INTERVAL_MS);

  constructor(opts: SmContextOptions) {
    this.name = opts.name;
    this.domains = new Set(opts.domains.map((d) => d.toLowerCase()));
    this.store = opts.store;
    this.port = opts.port;
    this.log = opts.log;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.acks = new TakenAcks(this.port);
    this.unacked = new Unacknowledged(this.port);
    this.forwardAcks = new AckBatch<string[]>(FORWARD_ACKS_PER_FRAME, () => [], (sm, origins) => {
      this.port.send(sm, "", encodeSessionPayload(SessionOp.Forwarded, { origins }));
    });
    this.queue = new KeyedQueue(
      (err, key) => this.log.error({ err, user: key }, "processing failed"),
      { jobs: this.limits.queueStanzas, bytes: this.limits.queueBytes },
      (user, refused, drained) => {
        if (drained) this.log.info({ user, refused }, "stanzas for an account flowing again after some were refused");
        else this.log.warn({ user, ...this.queue.load(user) }, "too many stanzas waiting for an account; refusing more with resource-constraint");
      },
    );
  }

  /** The session message in a payload; null, with a line now and then, for one a peer got wrong. */
  decode(payload: Buffer, peer: string): SessionMessage | null {
    try {
      return decodeSessionPayload(payload);
    } catch (err) {
      const unlogged = this.badPayloads.take();
      if (unlogged !== null) this.log.warn({ err: (err as Error).message, peer, unlogged }, "bad session payload dropped");
      return null;
    }
  }

  /** Sends a frame that carries a stanza; throws FrameTooLargeError when the link would not carry it. */
  transmit(to: string, key: string, payload: Buffer): void {
    if (!this.port.send(to, key, payload)) throw new FrameTooLargeError(payload.length);
  }
}

/** Whether a stanza may be answered with an error: not an error itself, nor an iq result (RFC 6120 §8.3.1, §8.2.3). */
export function answerable(stanza: Element): boolean {
  return !isError(stanza) && !(stanza.name === "iq" && stanza.attrs.type === "result");
}
