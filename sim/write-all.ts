// Writing many chunks to a socket no faster than the peer takes them: a
// hostile client's megabytes wait on its side of the connection (in TCP),
// not in its own process.
import type { Writable } from "node:stream";

/**
 * Writes each chunk in turn, waiting while the socket's buffer is full, and
 * stops once `stopped()` says the peer has closed; resolves with the
 * characters or bytes written.
 */
export async function writeAll(socket: Writable, chunks: Iterable<string | Buffer>, stopped: () => boolean): Promise<number> {
  let written = 0;
  for (const chunk of chunks) {
    if (stopped() || socket.destroyed) break;
    written += chunk.length;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done);
          socket.off("close", done);
          resolve();
        };
        socket.on("drain", done);
        socket.on("close", done);
      });
    }
  }
  return written;
}
