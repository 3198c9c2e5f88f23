// Idle-session benchmark: starts a one-box farm with one c2s on loopback,
// logs N users in (PLAIN over STARTTLS, or SCRAM in the clear), holds them, and
// prints the memory each farm process spends per session, with login
// latencies. Run: npm run bench:idle -- --count 10000 [--security none]
import fs from "node:fs";
import { parseArgs } from "node:util";
import { Farm } from "../sim/local-farm.js";
import { login, type RawSession } from "../sim/raw-session.js";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "10000" },
    security: { type: "string", default: "starttls" },
    concurrency: { type: "string", default: "100" },
    settle: { type: "string", default: "5" },
  },
});
const count = Number(values.count);
const security = values.security as "starttls" | "none";
const concurrency = Number(values.concurrency);

function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const farm = await Farm.create({
    c2sCount: 1,
    logLevel: "info",
    c2s: { require_tls: security !== "none", auth_timeout: 120, max_connections: 19_500 },
  });
  await farm.start();
  const names = ["router-1", "sm-1", "c2s-1"];
  const pids = Object.fromEntries(names.map((n) => [n, farm.childPid(n)]));
  try {
    await farm.addUsers("user", count, "bench-pw");
    await sleep(Number(values.settle) * 1000);
    const before = Object.fromEntries(names.map((n) => [n, rssKb(pids[n]!)]));

    const sessions: RawSession[] = [];
    // PLAIN is never accepted in the clear, so a plain-TCP run authenticates with SCRAM.
    const mechanism = security === "none" ? "SCRAM-SHA-1" : "PLAIN";
    const target = { host: "127.0.0.1", port: farm.c2sPorts[0]!.port, domain: "localhost", security, mechanism } as const;
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < count) {
        const i = ++next;
        try {
          sessions.push(await login(target, `user${i}`, "bench-pw"));
        } catch (err) {
          if (failed++ < 5) console.error(`user${i}: ${(err as Error).message}`);
        }
        if (i % 1000 === 0) process.stderr.write(`\r${i}/${count} logged in`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const loginSeconds = (performance.now() - t0) / 1000;
    process.stderr.write("\n");
    await sleep(Number(values.settle) * 1000);
    const after = Object.fromEntries(names.map((n) => [n, rssKb(pids[n]!)]));
    const held = sessions.filter((s) => !s.socket.destroyed).length;
    const lat = sessions.map((s) => s.loginMs).sort((a, b) => a - b);

    console.log(`idle sessions: ${held} held of ${count} (${failed} failed), security=${security}, ${mechanism}`);
    if (held === 0) throw new Error("no session was held");
    console.log(`logins: ${(count / loginSeconds).toFixed(0)}/s with ${concurrency} in flight; login p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms`);
    let total = 0;
    for (const n of names) {
      const delta = after[n]! - before[n]!;
      total += delta;
      console.log(`${n.padEnd(9)} RSS ${(before[n]! / 1024).toFixed(1)} MB -> ${(after[n]! / 1024).toFixed(1)} MB: ${(delta / held).toFixed(2)} KB/session`);
    }
    console.log(`farm total: ${(total / held).toFixed(2)} KB/session`);
    for (const s of sessions) s.socket.destroy();
  } finally {
    await farm.stop();
    farm.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
