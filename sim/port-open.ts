// Whether something accepts TCP connections on a loopback port: how the
// harnesses and benchmarks wait for a server they started to be ready.
import net from "node:net";

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
