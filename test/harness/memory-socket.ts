// Two ends of a socket in memory, for a connection under test without a
// network: what one end writes, the other reads; ending one ends the other's
// reading; destroying one closes both, as a reset does.
import { Duplex } from "node:stream";

export class MemorySocket extends Duplex {
  /** As a loopback client's, for the code that keys on the client's address. */
  readonly remoteAddress: string;
  peer!: MemorySocket;

  constructor(remoteAddress = "127.0.0.1") {
    // As net.Socket's default: once the peer ended, this end ends too, and closes.
    super({ allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
  }

  // Delivered on a later turn, as a network would: TLS over two streams in one process stalls
  // when each end's write runs the other's read within it.
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(chunk);
      done();
    });
  }

  override _final(done: (err?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(null);
      done();
    });
  }

  override _read(): void {}

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.destroy();
    done(err);
  }
}

/** [the client's end, the server's end]. */
export function socketPair(clientAddress = "127.0.0.1"): [MemorySocket, MemorySocket] {
  const client = new MemorySocket("127.0.0.1");
  const server = new MemorySocket(clientAddress);
  client.peer = server;
  server.peer = client;
  return [client, server];
}
