// What a simulated client (client.ts) needs from its worker (worker.ts): the
// scenario, statistics, timers, who is online, one per process. A client is
// seen here only as its user and its way on past a sync point, so that the
// client's modules can take a Ctx without importing client.ts.
import type tls from "node:tls";
import type { Wheel } from "./wheel.js";
import type { OnlineSet } from "./online-set.js";
import type { Scenario } from "./scenario.js";
import type { Recorder } from "./stats.js";

/** What the worker sees of a client. */
export interface CtxClient {
  /** The user: offset from users.first. */
  readonly k: number;
  /** Goes on with the next action (a sync point was released). */
  next(): void;
}

/** What a client needs from its worker. */
export interface Ctx {
  readonly sc: Scenario;
  readonly rec: Recorder;
  readonly wheel: Wheel;
  readonly online: OnlineSet;
  readonly random: () => number;
  /** One TLS context for every connection of the worker (a context per connection would cost memory and CPU). */
  readonly tls: tls.SecureContext;
  /** Verify the server's certificate (a CA was given). */
  readonly verify: boolean;
  /** Per action index: messages per second per user for chat actions. */
  readonly chatRate: readonly number[];
  /** The parent ended every chat action (RunOptions.endChats): a chatting user goes on at its next turn. */
  readonly chatsEnded: boolean;
  /** XEP-0198: ask for an ack every this many stanzas sent (0: never). */
  readonly smRequestEvery: number;
  /** Per action index: the ordinal of a sync action. */
  readonly syncPoint: readonly number[];
  /** XEP-0198: ask for resumption when enabling. */
  readonly smResume: boolean;
  /** Sockets open (gauge). */
  open: number;
  /** Users logged in (gauge). */
  sessions: number;
  userName(k: number): string;
  password(k: number): string;
  /** A message body of `size` bytes starting with `head`. */
  body(head: string, size: number): string;
  /** A message's number in the run, from its sender and the sender's count. */
  msgKey(k: number, seq: number): number;
  /** When the run started, on wallMicros()'s clock: a message stamped before it is an earlier run's. */
  readonly runStartMicros: number;
  /** A stamped message arrived; false if it is a copy of one that already had. */
  received(key: number, online: boolean): boolean;
  /** A message to an online user came back to its sender as an error. */
  bounced(key: number): void;
  /** Messages to online users the sender cannot know the server read (sent without resumption just before a cut). */
  unconfirmed(keys: number[]): void;
  wentOnline(c: CtxClient): void;
  wentOffline(c: CtxClient): void;
  syncReleased(point: number): boolean;
  /** c reached sync point `point`; the worker calls c.next() when it is released. */
  reachedSync(c: CtxClient, point: number): void;
  /** c is done (closed, failed or cut); `syncs` is how many sync points it reached. */
  finished(c: CtxClient, syncs: number): void;
}
