// What an idle connection costs a bare node server, without xfarm: plain
// TCP, direct TLS, and STARTTLS (a net.Socket wrapped in a TLSSocket, as the
// c2s does), with TLS variants. For each, a server process of its own holds
// N loopback connections opened from this process (one exchange each, then
// silence); its RSS and V8 heap once settled (as idle_gc settles a farm
// process), before and after, give the cost per connection (docs/bench.md,
// "What an idle TLS connection costs").
// Run: node dist/bench/tls-idle-cost.js [--count 5000] [--modes plain,direct,starttls]
import { fork } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { GROWN_BYTES, collectAndCompact, youngGenerationBytes } from "../lib/idle-heap.js";
import { makeCert } from "./bench-targets.js";

/** plain; direct (TLS from the first byte); starttls; and TLS variants: -tls12 (TLS 1.2 at most), -noticket (no session tickets). */
type Mode = string;

interface Figures {
  rss: number;
  heapUsed: number;
  /** The young generation's size when measured: 1 MB once settled. */
  young: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The measured process: listens, holds every connection, answers each client's first bytes once. */
function serve(mode: Mode, keyFile: string, certFile: string): void {
  const opts: tls.SecureContextOptions = { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) };
  if (mode.includes("-tls12")) opts.maxVersion = "TLSv1.2";
  if (mode.includes("-noticket")) opts.secureOptions = 0x4000; // SSL_OP_NO_TICKET
  const context = tls.createSecureContext(opts);
  const held: net.Socket[] = [];
  const answer = (s: net.Socket) => {
    held.push(s);
    s.on("error", () => {});
    s.once("data", () => s.write("ok"));
  };
  const server = mode.startsWith("plain")
    ? net.createServer(answer)
    : mode.startsWith("direct")
      ? tls.createServer(opts, answer)
      : net.createServer((raw) =>
          raw.once("data", () => {
            raw.write("proceed");
            answer(new tls.TLSSocket(raw, { isServer: true, secureContext: context }));
          }),
        );
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as net.AddressInfo).port }));
  // Goes with the process that measures it, however that ends.
  process.on("disconnect", () => process.exit(0));
  process.on("message", async () => {
    // Settled as an idle farm process settles (lib/idle-heap.ts): the young generation the
    // connections grew given back, the old one compacted. Without it, the young generation's
    // growth (16 MB over 5,000 connections) counted as 3 KB of each.
    for (let tries = 0; tries < 5; tries++) {
      collectAndCompact();
      if (youngGenerationBytes() <= GROWN_BYTES) break;
      await sleep(2000);
    }
    // The pages a compaction emptied are unmapped by a task of V8's own, a moment later.
    await sleep(2000);
    const m = process.memoryUsage();
    process.send!({ rss: m.rss, heapUsed: m.heapUsed, young: youngGenerationBytes() } satisfies Figures);
  });
}

/** One client: connects (and negotiates TLS as the mode says), sends a few bytes, waits for the answer. */
function open(mode: Mode, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const exchange = (s: net.Socket) => {
      s.once("data", () => resolve(s));
      s.write("hi");
    };
    if (mode.startsWith("plain")) {
      const s = net.connect(port, "127.0.0.1", () => exchange(s)).on("error", reject);
    } else if (mode.startsWith("direct")) {
      const s = tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false }, () => exchange(s)).on("error", reject);
    } else {
      const raw = net.connect(port, "127.0.0.1", () => raw.write("starttls")).on("error", reject);
      raw.once("data", () => {
        const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => exchange(s)).on("error", reject);
      });
    }
  });
}

async function measure(mode: Mode, count: number, keyFile: string, certFile: string): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["--serve", mode, keyFile, certFile], { execArgv: ["--expose-gc"] });
  const next = () => new Promise<unknown>((r) => child.once("message", r));
  const { port } = (await next()) as { port: number };
  const figures = async () => {
    const reply = next();
    child.send("measure");
    return (await reply) as Figures;
  };
  await sleep(500);
  const before = await figures();
  const clients: net.Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => open(mode, port)))));
  }
  await sleep(3000);
  const after = await figures();
  const per = (k: keyof Figures) => ((after[k] - before[k]) / count / 1024).toFixed(1);
  const young = (f: Figures) => `${f.young / 1048576} MB`;
  console.log(`${mode.padEnd(16)} ${count} held: RSS ${per("rss")} KB/connection, V8 heap ${per("heapUsed")} KB/connection (young generation ${young(before)} → ${young(after)})`);
  for (const c of clients) c.destroy();
  child.kill();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: "string", default: "5000" }, modes: { type: "string", default: "plain,direct,starttls,direct-tls12,direct-noticket" } },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-tls-cost-"));
  try {
    const cert = await makeCert(dir);
    for (const mode of values.modes.split(",")) await measure(mode, Number(values.count), cert.key, cert.cert);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--serve") serve(process.argv[3]!, process.argv[4]!, process.argv[5]!);
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
