// The entry point of a forked simulator worker (see sim/worker.ts and
// sim/protocol.ts). It exits after its final report, or when the parent goes.
import type { ToParent, ToWorker } from "./protocol.js";
import { SimWorker } from "./worker.js";

const send = (m: ToParent, then?: () => void) => {
  if (!process.connected) return then?.();
  process.send!(m, undefined, {}, (err) => {
    if (err) process.exit(1);
    then?.();
  });
};

const worker = new SimWorker((m) => {
  if (m.type === "final") send(m, () => process.exit(0));
  else send(m);
});

process.on("message", (m: ToWorker) => {
  try {
    worker.handle(m);
  } catch (err) {
    send({ type: "fatal", message: (err as Error).stack ?? String(err) }, () => process.exit(1));
  }
});
// Ctrl-C reaches the whole process group: the parent decides, and stops us with a message.
process.on("SIGINT", () => {});
// The parent died or let go: nothing to report to any more.
process.on("disconnect", () => process.exit(0));
send({ type: "ready", rss: process.memoryUsage().rss });
