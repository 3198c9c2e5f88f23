// The messages between `xfarm sim` (the parent) and its worker processes,
// over the fork IPC channel (JSON). docs/sim.md describes the exchange:
//
//   worker → parent  ready                         once, when loaded (its base RSS)
//   parent → worker  start {scenario, index, workers, t0}
//   worker → parent  status {up, down, reached, missed, sent, received}   at most every 100 ms, when changed
//   parent → worker  online {up, down}              other workers' users going on- and offline
//   parent → worker  release {point}                a sync point every user has reached
//   parent → worker  end-chats                      every chat action ends at its user's next turn
//   worker → parent  tick {report}                  every second, on the second since t0
//   worker → parent  idle                           all its users have arrived and finished
//   parent → worker  stop                           close every session now (run over, or Ctrl-C)
//   worker → parent  final {report}                 the last report; then it exits
//   worker → parent  fatal {message}                it failed (the run ends with "error")
import type { Scenario } from "./scenario.js";
import type { TickReport } from "./stats.js";

export type ToWorker =
  | { type: "start"; scenario: Scenario; index: number; workers: number; /** Run start, wall clock (Date.now()) ms. */ t0: number }
  | { type: "online"; up: number[]; down: number[]; unconfirmed: number[] }
  | { type: "release"; point: number }
  | { type: "end-chats" }
  | { type: "stop" };

export type ToParent =
  | { type: "ready"; rss: number }
  | {
      type: "status";
      /** Users (offsets from users.first) that went online / offline since the last status. */
      up: number[];
      down: number[];
      /** Messages (msgKey) its users sent that may never have reached the server: the receivers' workers count those that arrived. */
      unconfirmed: number[];
      /** Per sync point: users that reached it, users that ended without reaching it (cumulative). */
      reached: number[];
      missed: number[];
      /** Messages sent to online users, and those accounted for: delivered, bounced or unconfirmed (cumulative). */
      sent: number;
      received: number;
    }
  | { type: "tick"; report: TickReport }
  | { type: "idle" }
  | { type: "final"; report: TickReport }
  | { type: "fatal"; message: string };
