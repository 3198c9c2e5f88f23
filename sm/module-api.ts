// What a feature module sees of the sm. A module is `(api) => void`: it hooks
// events, advertises features and sends stanzas, and keeps its own state.
import type { Element } from "ltx";
import type { Logger } from "../lib/log.js";
import type { Store } from "../xdb-sql/store.js";
import type { Handler, HookEvents, HookName, StanzaEvent } from "./hooks.js";
import type { SmLimits } from "./limits.js";
import type { ModuleStorage } from "./module-storage.js";
import type { SessionView, Session } from "./sessions.js";
import type { Condition } from "../lib/stanza-error.js";

/**
 * Whose disco#info (XEP-0030) a feature or identity goes to: the server's, or
 * every account's, answered on the user's behalf (XEP-0163 §6.1).
 */
export type DiscoTarget = "server" | "account";

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

/** An offline message delivered: its store id, and whether it ends a batch. */
export interface StoredDelivery {
  confirm: number;
  last: boolean;
}

export interface ModuleApi {
  readonly domains: ReadonlySet<string>;
  readonly store: Store;
  /** Storage the module declares under its own names: api.storage.kv("blocking"), api.storage.archive("mam") (sm/module-storage.ts). */
  readonly storage: ModuleStorage;
  readonly sessions: SessionView;
  readonly log: Logger;
  /** What one account may store and grow, and the largest stanza the sm may send (sm/limits.ts). */
  readonly limits: Readonly<SmLimits>;
  hook<N extends HookName>(name: N, handler: Handler<HookEvents[N]>, priority?: number): void;
  fire<N extends HookName>(name: N, event: HookEvents[N]): Promise<boolean>;
  /** Adds a feature var to the server's disco#info, or to every account's. */
  addFeature(feature: string, on?: DiscoTarget): void;
  /** The features added so far, sorted. */
  features(on?: DiscoTarget): string[];
  /** Adds an identity to the server's disco#info, or to every account's. */
  addIdentity(identity: Identity, on?: DiscoTarget): void;
  /** The identities added so far, in order. */
  identities(on?: DiscoTarget): Identity[];
  /**
   * Routes a stanza to its 'to': inbound processing here when this sm owns
   * the recipient, else FORWARD to its sm; an error for domains the farm does
   * not serve. `raw` is the stanza's unchanged original bytes, if any.
   * Rejects with FrameTooLargeError (sm/stanza.ts) when the frame to
   * another process would pass link.max_frame.
   */
  send(stanza: Element, raw?: Buffer): Promise<void>;
  /**
   * Writes a stanza to one session's client as it is. One too large for a
   * link frame is not sent: this throws FrameTooLargeError, and unless a
   * module catches it the stanza being processed is answered
   * resource-constraint. `stored`: an offline message, which the c2s reports
   * back (the `delivered` hook) once the client has it (protocol §2.4).
   */
  deliver(session: Session, stanza: Element, raw?: Buffer, stored?: StoredDelivery): void;
  /** Answers a stanza: straight to the session that sent it, else routed to its sender. */
  reply(event: StanzaEvent, stanza: Element): Promise<void>;
  /** Answers with a stanza error (RFC 6120 §8.3); an error stanza gets none. */
  error(event: StanzaEvent, condition: Condition, text?: string): Promise<void>;
  /** Whether a local account exists. */
  userExists(user: string): Promise<boolean>;
  /** Domains of the XEP-0114 components linked to the router now (its member table). */
  components(): string[];
  /**
   * Sends an iq get or set on a local user's or a served domain's behalf (its
   * 'from' that bare JID or domain, its 'to' set; an id is added when it has
   * none) and resolves with the result; rejects with an IqRequestError
   * (sm/stanza.ts) on an error answer or when none came within `timeoutMs`
   * (10 s by default). The answer is processed in the queue of its 'to', the
   * asker: never await a request inside that user's own processing (a hook
   * handler for it), which would hold the answer back until the timeout.
   * Code after the answer runs outside any queue: go back in with run().
   */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /**
   * Runs a job in a user's queue (sm/queue.ts), after everything already
   * queued for the user: for work that resumes outside stanza processing, as
   * after a request() or a timer. Never await it from the user's own queue.
   */
  run(user: string, job: () => Promise<void>): Promise<void>;
  /**
   * The identity (docs/protocol.md §2.5) of what the work running now hands
   * `recipient` (an account's offline store, say): the same when the frame
   * that set it going is processed again after a failover, so that storing
   * it again can be recognised; undefined outside such work, or when longer
   * than the store keeps (STORE_LIMITS.origin).
   */
  deliveryId(recipient: string): string | undefined;
}

export type SmModule = (api: ModuleApi) => void;
