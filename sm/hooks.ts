// The sm's hook surface: named events, each handler answering whether it
// handled the event, as in Prosody and jabberd2's chains.
//
// Stanza events are named from the stanza, so a feature module hooks exactly
// what it serves:
//
//   pre-<kind>/<target>               outbound: a local session sent it; fired on
//                                     the sender's sm before routing. Unhandled, the
//                                     stanza is routed to its recipient.
//   <kind>/<target>                   inbound: fired on the sm that owns the recipient.
//   iq-<get|set>/<target>/<ns>:<name> inbound iq get/set, by its payload element;
//                                     fired before iq/<target>.
//   stanza/<target>                   inbound, any kind: fired before all of the above,
//                                     for what applies to every stanza to a user
//                                     (XEP-0191 blocking). Self stanzas do not fall
//                                     through to stanza/bare.
//
//   kind:   message | presence | iq
//   target: self  from a local session to its own account (no 'to', or its bare JID)
//           bare  to a local user's bare JID
//           full  to a local user's full JID
//           host  to a served domain (with or without a resource)
//
// An unhandled inbound <…>/self event fires again as <…>/bare, so a feature
// answered on a user's behalf (disco, vCard…) hooks bare only. An iq get/set
// nobody handles is answered with service-unavailable; other unhandled
// inbound stanzas are dropped. An iq result or error that answers a
// module's request() (module-api.ts) is taken before any hook sees it. Stanzas for domains the farm does not serve
// never reach hooks (no s2s yet): message and iq get remote-server-not-found.
//
// Other events:
//
//   session-started    a resource was bound
//   session-ended      a session ended (END, conflict, its c2s vanished…); already unregistered
//   session-available  a session sent its initial available presence
//   session-rebuilt    a c2s re-established a session here (protocol §2.2): no presence was broadcast
//   delivered          the c2s reports offline messages delivered (protocol §2.4)
//   client-state       the client said it is active or inactive (XEP-0352, CLIENT_STATE); a resumed stream says active
//   roster-changed     a roster item the user can see changed or was removed
//   message-offline    a chat/normal message found no resource to take it
//   account-deleted    the account goes (xfarm user del, XEP-0077 removal): its sessions have ended, its data is still stored
//
// Handlers run highest priority first (default 0), in registration order on
// ties, until one returns true. A handler that can answer at once returns a
// boolean (or nothing), not a promise: the chain goes on in the same turn,
// which matters on the path of every message.
import type { Element } from "ltx";
import type { Jid } from "../lib/jid.js";
import type { RosterItem } from "../xdb-sql/store.js";
import type { Work } from "./origin.js";
import type { Session } from "./sessions.js";

export type Kind = "message" | "presence" | "iq";
export type Target = "self" | "bare" | "full" | "host";

/**
 * What every event carries: the work it is part of, which the module hands
 * back to the api's sends and deliveries (api.send(event.work, …)) so that
 * they are named and queued as that work's (sm/origin.ts).
 */
export interface WorkEvent {
  readonly work: Work;
}

export interface StanzaEvent extends WorkEvent {
  readonly stanza: Element;
  /** The bytes the stanza was parsed from, to pass on unchanged; undefined for stanzas the sm built. */
  readonly raw: Buffer | undefined;
  readonly from: Jid;
  /** The recipient; for a self stanza without 'to', the sender's bare JID. */
  readonly to: Jid;
  /** The local session that sent it: set in the outbound phase and for self stanzas. */
  readonly origin: Session | undefined;
}

export interface SessionEvent extends WorkEvent {
  readonly session: Session;
}

export interface DeliveredEvent extends WorkEvent {
  readonly session: Session;
  /** Every offline message of this session up to this store id reached the client. */
  readonly confirm: number;
}

export interface ClientStateEvent extends WorkEvent {
  readonly session: Session;
  readonly active: boolean;
}

export interface RosterChangedEvent extends WorkEvent {
  readonly user: string;
  readonly contact: string;
  /** The item as it is now; null when removed. */
  readonly item: RosterItem | null;
}

export interface AccountEvent extends WorkEvent {
  /** The account's bare JID. */
  readonly user: string;
}

export type HookEvents = {
  [N in `${"" | "pre-"}${Kind}/${Target}`]: StanzaEvent;
} & {
  [N in `iq-${"get" | "set"}/${Target}/${string}`]: StanzaEvent;
} & {
  [N in `stanza/${Target}`]: StanzaEvent;
} & {
  "session-started": SessionEvent;
  "session-ended": SessionEvent;
  "session-available": SessionEvent;
  "session-rebuilt": SessionEvent;
  delivered: DeliveredEvent;
  "client-state": ClientStateEvent;
  "roster-changed": RosterChangedEvent;
  "message-offline": StanzaEvent;
  "account-deleted": AccountEvent;
};

export type HookName = keyof HookEvents & string;

export type Handler<E> = (event: E) => boolean | void | Promise<boolean | void>;

interface Entry {
  handler: Handler<never>;
  priority: number;
}

export class Hooks {
  private readonly chains = new Map<string, Entry[]>();

  on<N extends HookName>(name: N, handler: Handler<HookEvents[N]>, priority = 0): void {
    const chain = this.chains.get(name) ?? [];
    // Stable: among equal priorities, earlier registrations run first.
    const at = chain.findIndex((e) => e.priority < priority);
    chain.splice(at < 0 ? chain.length : at, 0, { handler: handler as Handler<never>, priority });
    this.chains.set(name, chain);
  }

  /**
   * Runs the chain; true when a handler handled the event. The answer is
   * synchronous while every handler's is: a stanza runs several chains, and
   * each promise costs a turn of the microtask queue.
   */
  fire<N extends HookName>(name: N, event: HookEvents[N]): boolean | Promise<boolean> {
    const chain = this.chains.get(name);
    return chain ? runChain(chain, 0, event) : false;
  }
}

function runChain<E>(chain: readonly Entry[], from: number, event: E): boolean | Promise<boolean> {
  for (let i = from; i < chain.length; i++) {
    const handled = (chain[i]!.handler as Handler<E>)(event);
    if (handled instanceof Promise) return handled.then((h) => h === true || runChain(chain, i + 1, event));
    if (handled === true) return true;
  }
  return false;
}
