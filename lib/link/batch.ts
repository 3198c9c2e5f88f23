// Link frames written during one turn of the event loop leave together, in
// one system call per link. Under load a c2s sends a frame for nearly every
// client read, and the router one per frame it forwards; a write(2) each,
// on loopback, cost more CPU than anything else a login did.
import type { Writable } from "node:stream";

let corked = new Set<Writable>();
let scheduled = false;

function uncorkAll(): void {
  // A fresh set first: what uncorking sets off may batch again, for the next turn.
  const streams = corked;
  corked = new Set();
  scheduled = false;
  for (const stream of streams) stream.uncork();
}

/**
 * `stream`, corked until the check phase of this turn of the event loop
 * (setImmediate: after every I/O callback of the turn, so the writes their
 * handlers made go out as one). Order is kept: a corked stream queues every
 * write, batched or not, in order.
 */
export function batched<W extends Writable>(stream: W): W {
  if (corked.has(stream)) return stream;
  stream.cork();
  corked.add(stream);
  if (!scheduled) {
    scheduled = true;
    setImmediate(uncorkAll);
  }
  return stream;
}
