// Free loopback ports for test farms.
import net from "node:net";

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A base port such that base + each offset is free on 127.0.0.1. */
export async function freePortBase(offsets: number[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const ok = await Promise.all(offsets.map((o) => isFree(base + o)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error("no free ports found");
}
