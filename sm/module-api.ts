// What a feature module sees of the sm. A module is a definition (its name,
// whether it is on by default, its options) whose setup(api, options) hooks
// events, adds filters, advertises features and sends stanzas; it keeps its
// own state, and per-session state that must survive the session's move to
// another sm in its session-state slot.
import type { Element } from "ltx";
import type { KeyType } from "../lib/config.js";
import type { Logger } from "../lib/log.js";
import type { Store } from "../xdb-sql/store.js";
import type { Handler, HookEvents, HookName, StanzaEvent } from "./hooks.js";
import type { SmLimits } from "./limits.js";
import type { ModuleStorage } from "./module-storage.js";
import type { Work } from "./origin.js";
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

/** An offline message to deliver: its store id, and the stanza. */
export interface StoredMessage {
  readonly id: number;
  readonly stanza: Element;
}

/** How the sessions the sm ends are closed: the stream error (RFC 6120 §4.9.3) the client gets, and the log's reason. */
export interface StreamClose {
  readonly reason: string;
  readonly condition: string;
  readonly text?: string;
}

/** The account is gone (`xfarm user del`, XEP-0077 removal), as Prosody closes its sessions. */
export const ACCOUNT_DELETED: StreamClose = { reason: "account deleted", condition: "not-authorized", text: "account deleted" };

/**
 * The password changed (`xfarm user passwd`, XEP-0077): the credentials a
 * session logged in with are no longer the account's, so it must log in
 * again. RFC 6120 §4.9.3.16 names `reset` for changed credentials, and
 * Prosody (mod_c2s, on user-password-changed) closes with it.
 */
export const PASSWORD_CHANGED: StreamClose = { reason: "password changed", condition: "reset", text: "password changed" };

/** A value JSON carries as it is: what a session-state slot holds. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * One module's state for each session, carried to the session's front end
 * (SESSION_STATE, protocol §2) and back with REBUILD and HANDOFF, so that it
 * survives the session's move to another sm; restored there before
 * `session-rebuilt` fires. A session none of whose modules set state holds
 * nothing for it.
 */
export interface SessionStateSlot<T extends Json> {
  get(session: Session): T | undefined;
  /**
   * Sets (undefined: clears) the module's value and sends the session's
   * whole state to its front end. False, and nothing changed, when the
   * session's state would pass SESSION_STATE_MAX_BYTES as JSON.
   */
  set(session: Session, value: T | undefined): boolean;
}

/** A stanza on its way to one session's client, as the outgoing filters see it. */
export interface Outgoing {
  readonly session: Session;
  readonly stanza: Element;
  /** Its bytes as received, while no filter changed it. */
  readonly raw: Buffer | undefined;
  /** An offline message (protocol §2.4): it may be changed or dropped, never held (a hold passes it on). */
  readonly stored: boolean;
  /**
   * Its delivery's identity (protocol §2.5), taken when the sm delivered it:
   * a filter that holds the stanza and releases a changed copy (`{ ...out, stanza }`)
   * keeps it, so the stanza goes under its own name and not under that of the work that releases it.
   */
  readonly origin: string | undefined;
}

/**
 * What an outgoing filter does with a stanza:
 * - nothing (undefined): it goes on as it is;
 * - `{ stanza }`: it goes on changed;
 * - `"drop"`: handled, never written (a message the XEP wants answered: use bounce);
 * - `{ bounce, text? }`: dropped, and its sender answered with that stanza
 *   error (an error or an iq result gets none);
 * - `"hold"`: the filter keeps it, and hands it on later with its handle's
 *   release(): for XEP-0352, traffic held while the client is inactive.
 */
export type FilterVerdict = undefined | { stanza: Element } | "drop" | { bounce: Condition; text?: string } | "hold";

/**
 * Runs on every stanza the sm writes to a client (api.deliver, replies,
 * errors, offline messages, presence broadcasts, roster pushes…), highest
 * priority first. Synchronous, so that a session's stanzas keep the order
 * they were delivered in: what a filter needs from the store it loads
 * beforehand (at session-started, say). One that throws is logged and
 * passes the stanza on. `work` is what delivers the stanza: what a filter
 * that releases held stanzas meanwhile hands FilterHandle.release().
 */
export type OutgoingFilter = (out: Outgoing, work: Work) => FilterVerdict;

export interface FilterHandle {
  /**
   * Hands a held stanza on to the filters after this one, then the client,
   * in the user's turn (a hook, or api.run()), under its own identity
   * (`origin`), `work` (the work releasing it) waiting for it (protocol §2.5). The
   * work that made it was taken when it was held:
   * a holding filter holds only what the sm may lose with itself (presence,
   * chat states), and nothing it holds counts for XEP-0198 until written.
   * A session ended meanwhile: a message is routed again (its user's other
   * resources, offline storage), the rest dropped.
   */
  release(work: Work, out: Outgoing): void;
}

/** Types an option may have: those of the config's keys (lib/config.ts). */
export type OptionType = KeyType;
type ValueOf<T extends OptionType> = T extends "string" ? string : T extends "integer" | "number" ? number : T extends "boolean" ? boolean : string[];

/** An option a module declares: set in `[sm.modules.NAME]` or XFARM_SM_MODULES_NAME_KEY, as config keys are. */
export interface OptionSpec<T extends OptionType = OptionType> {
  type: T;
  default: ValueOf<T>;
  doc: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The options' values, typed from their specs. */
export type OptionsOf<S extends OptionSpecs> = { readonly [K in keyof S]: ValueOf<S[K]["type"]> };

/** What a module file sm/mod-NAME.ts exports, once: sm/modules.ts finds it there. */
export interface ModuleDefinition<S extends OptionSpecs = OptionSpecs> {
  /** Its name in the config (`[sm.modules.NAME]`): lower case, digits and underscores. */
  readonly name: string;
  /** What it does, for the config reference. */
  readonly doc: string;
  /** Whether it runs when the config does not say; a core module runs always, other modules need it. */
  readonly enabled: boolean | "core";
  readonly options: S;
  setup(api: ModuleApi, options: OptionsOf<S>): void;
}

/** A module definition, its options typed from their specs. */
export function defineModule<S extends OptionSpecs>(definition: ModuleDefinition<S>): ModuleDefinition<S> {
  return definition;
}

export interface ModuleApi {
  /** The module's name, as its definition gives it. */
  readonly module: string;
  readonly domains: ReadonlySet<string>;
  readonly store: Store;
  /** Storage the module declares under its own names: api.storage.kv("blocking"), api.storage.archive("mam") (sm/module-storage.ts). */
  readonly storage: ModuleStorage;
  readonly sessions: SessionView;
  readonly log: Logger;
  /** What one account may store and grow, and the largest stanza the sm may send (sm/limits.ts). */
  readonly limits: Readonly<SmLimits>;
  hook<N extends HookName>(name: N, handler: Handler<HookEvents[N]>, priority?: number): void;
  /** Adds an outgoing filter (OutgoingFilter); filters of equal priority run in the order added. */
  filter(filter: OutgoingFilter, priority?: number): FilterHandle;
  /** This module's per-session state slot. */
  sessionState<T extends Json>(): SessionStateSlot<T>;
  fire<N extends HookName>(name: N, event: HookEvents[N]): Promise<boolean>;
  /** Adds a feature var to the server's disco#info, or to every account's. */
  addFeature(feature: string, on?: DiscoTarget): void;
  /** The features added so far, sorted. */
  features(on?: DiscoTarget): string[];
  /** Adds an identity to the server's disco#info, or to every account's. */
  addIdentity(identity: Identity, on?: DiscoTarget): void;
  /** The identities added so far, in order. */
  identities(on?: DiscoTarget): Identity[];
  /** Adds an XEP-0128 extension (a jabber:x:data form of type result, with its FORM_TYPE) to the server's disco#info, or to every account's. */
  addForm(form: Element, on?: DiscoTarget): void;
  /** The forms added so far, in order. */
  forms(on?: DiscoTarget): Element[];
  /**
   * Routes a stanza to its 'to', as part of `work` (the event's being
   * handled: `event.work`): inbound processing here when this sm owns
   * the recipient, else FORWARD to its sm; an error for domains the farm does
   * not serve. `raw` is the stanza's unchanged original bytes, if any.
   * Rejects with FrameTooLargeError (sm/stanza.ts) when the frame to
   * another process would pass link.max_frame.
   */
  send(work: Work, stanza: Element, raw?: Buffer): Promise<void>;
  /**
   * Writes a stanza that `work` makes to one session's client, through the outgoing filters.
   * One too large for a link frame is not sent: this throws
   * FrameTooLargeError, and unless a module catches it the stanza being
   * processed is answered resource-constraint.
   */
  deliver(work: Work, session: Session, stanza: Element, raw?: Buffer): void;
  /**
   * Writes a batch of offline messages (protocol §2.4) through the outgoing
   * filters, marking the last one written; the c2s reports them back (the
   * `delivered` hook) once the client has them. Returns the store ids of
   * those a filter dropped: handled, never to be reported, so the caller
   * deletes them.
   */
  deliverStored(work: Work, session: Session, batch: readonly StoredMessage[]): number[];
  /** Answers a stanza: straight to the session that sent it, else routed to its sender. */
  reply(event: StanzaEvent, stanza: Element): Promise<void>;
  /** Answers with a stanza error (RFC 6120 §8.3); an error stanza gets none. */
  error(event: StanzaEvent, condition: Condition, text?: string): Promise<void>;
  /** Whether a local account exists. */
  userExists(user: string): Promise<boolean>;
  /** Domains of the XEP-0114 components linked to the router now (its member table). */
  components(): string[];
  /**
   * Sends an iq get or set, as part of `work`, on a local user's or a served domain's behalf (its
   * 'from' that bare JID or domain, its 'to' set; an id is added when it has
   * none) and resolves with the result; rejects with an IqRequestError
   * (sm/stanza.ts) on an error answer or when none came within `timeoutMs`
   * (10 s by default). The answer is processed in the queue of its 'to', the
   * asker: never await a request inside that user's own processing (a hook
   * handler for it), which would hold the answer back until the timeout.
   * Code after the answer runs outside any queue: go back in with run().
   */
  request(work: Work, iq: Element, timeoutMs?: number): Promise<Element>;
  /**
   * Runs a job in a user's queue (sm/queue.ts), after everything already
   * queued for the user: for work that resumes outside stanza processing, as
   * after a request() or a timer. Never await it from the user's own queue.
   * The job's work (`inTurn(user)`: in the user's turn, without an identity)
   * is what its sends and deliveries take.
   */
  run(user: string, job: (work: Work) => Promise<void>): Promise<void>;
  /**
   * The identity (docs/protocol.md §2.5) of what `work` hands `recipient`
   * (an account's offline store, say): the same when the frame that set it
   * going is processed again after a failover, so that storing it again can
   * be recognised; undefined for work without an identity, or when longer
   * than the store keeps (STORE_LIMITS.origin).
   */
  deliveryId(work: Work, recipient: string): string | undefined;
  /** PBKDF2 iterations for the SCRAM keys a module derives: c2s.scram_iterations, as `xfarm user add` uses. */
  readonly scramIterations: number;
  /**
   * Ends the sessions of a local user held here, but `keep`, each client's
   * stream closed as `close` says. In the user's turn only (`work`): from a
   * hook of that user's, or a job of api.run().
   */
  endSessions(work: Work, user: string, close: StreamClose, keep?: Session): Promise<void>;
  /**
   * Deletes a local account as `xfarm user del` does on its owner sm
   * (protocol §1.7): its sessions here end with ACCOUNT_DELETED while its
   * roster still names whom to tell, `account-deleted` fires (its contacts'
   * subscriptions are cancelled), and it leaves the store with all it
   * holds. In the user's turn only, as endSessions.
   */
  deleteAccount(work: Work, user: string): Promise<void>;
}
