// What a feature module sees of the sm. A module is `(api) => void`: it hooks
// events, advertises features and sends stanzas, and keeps its own state.
import type { Element } from "ltx";
import type { Logger } from "../lib/log.js";
import type { Store } from "../xdb-sql/store.js";
import type { Handler, HookEvents, HookName, StanzaEvent } from "./hooks.js";
import type { SessionView, Session } from "./sessions.js";
import type { Condition } from "./stanza.js";

export interface ModuleApi {
  readonly domains: ReadonlySet<string>;
  readonly store: Store;
  readonly sessions: SessionView;
  readonly log: Logger;
  hook<N extends HookName>(name: N, handler: Handler<HookEvents[N]>, priority?: number): void;
  fire<N extends HookName>(name: N, event: HookEvents[N]): Promise<boolean>;
  /** Adds a feature var to the server's disco#info (XEP-0030). */
  addFeature(feature: string): void;
  /** The features added so far, sorted. */
  features(): string[];
  /**
   * Routes a stanza to its 'to': inbound processing here when this sm owns
   * the recipient, else FORWARD to its sm; an error for domains the farm does
   * not serve. `raw` is the stanza's unchanged original bytes, if any.
   */
  send(stanza: Element, raw?: Buffer): Promise<void>;
  /** Writes a stanza to one session's client as it is. */
  deliver(session: Session, stanza: Element, raw?: Buffer): void;
  /** Answers a stanza: straight to the session that sent it, else routed to its sender. */
  reply(event: StanzaEvent, stanza: Element): Promise<void>;
  /** Answers with a stanza error (RFC 6120 §8.3); an error stanza gets none. */
  error(event: StanzaEvent, condition: Condition, text?: string): Promise<void>;
  /** Whether a local account exists. */
  userExists(user: string): Promise<boolean>;
}

export type SmModule = (api: ModuleApi) => void;
