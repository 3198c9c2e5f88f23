// A one-shot admin link to the router (protocol §1.7): what `xfarm status`
// and `xfarm c2s drain` use. The admin secret is secrets.admin. Of a router
// pair, the active router holds the farm: a request is sent to the addresses
// in turn until one answers as active, and only when none does is a passive
// one asked; `xfarm status` asks every address at once instead (askEvery).
import { pino } from "pino";
import { routerAddresses, type Config } from "../config.js";
import type { ControlMessage } from "./control.js";
import { LinkClient } from "./link-client.js";

export const ADMIN_NAME = "admin";

type Answer<Op extends ControlMessage["op"]> = Extract<ControlMessage, { op: Op }>;

/**
 * Sends one request and resolves with the first answer of op `answer`, from
 * the active router if one answers; `addresses` are the farm's routers by default.
 */
export async function adminRequest<Op extends ControlMessage["op"]>(
  config: Config,
  request: ControlMessage,
  answer: Op,
  timeoutMs = 5_000,
  addresses = routerAddresses(config),
): Promise<Answer<Op>> {
  const secret = adminSecret(config);
  const failures: string[] = [];
  let passive: string | null = null;
  for (const address of addresses) {
    const r = await askOne(secret, address, request, answer, timeoutMs, true);
    if (r.kind === "answer") return r.answer;
    if (r.kind === "passive") passive ??= address;
    else failures.push(`${address}: ${r.reason}`);
  }
  // No router answered as active (an election under way, say): the passive one says so itself.
  if (passive) {
    const r = await askOne(secret, passive, request, answer, timeoutMs, false);
    if (r.kind === "answer") return r.answer;
    failures.push(`${passive}: ${r.kind === "failed" ? r.reason : "passive"}`);
  }
  throw new Error(`no answer from the router (${failures.join("; ")}); is it running, with the same secrets.admin?`);
}

/** What one router address gave: its answer, or why there was none. */
export type RouterReply<Op extends ControlMessage["op"]> = { address: string; answer: Answer<Op> } | { address: string; error: string };

/**
 * Sends one request to every router address at once, passive ones
 * included, and resolves with each one's reply once all have replied or
 * failed; `addresses` are the farm's routers by default.
 */
export async function askEvery<Op extends ControlMessage["op"]>(
  config: Config,
  request: ControlMessage,
  answer: Op,
  timeoutMs = 5_000,
  addresses = routerAddresses(config),
): Promise<RouterReply<Op>[]> {
  const secret = adminSecret(config);
  return Promise.all(
    addresses.map(async (address) => {
      const r = await askOne(secret, address, request, answer, timeoutMs, false);
      return r.kind === "answer" ? { address, answer: r.answer } : { address, error: r.kind === "failed" ? r.reason : "passive" };
    }),
  );
}

function adminSecret(config: Config): string {
  const secret = config.secrets.get(ADMIN_NAME);
  if (!secret) throw new Error(`no admin secret: set secrets.admin in the config (xfarm start generates it in ${config.data_dir}/secrets.toml)`);
  return secret;
}

/** A link failure in an admin's words: a refused connection says plainly that nothing listens there. */
function failure(reason: string): string {
  return /ECONNREFUSED/.test(reason) ? "connection refused (no router listens there)" : reason;
}

type Outcome<Op extends ControlMessage["op"]> = { kind: "answer"; answer: Answer<Op> } | { kind: "passive" } | { kind: "failed"; reason: string };

function askOne<Op extends ControlMessage["op"]>(
  secret: string,
  address: string,
  request: ControlMessage,
  answer: Op,
  timeoutMs: number,
  activeOnly: boolean,
): Promise<Outcome<Op>> {
  // Link trouble is reported as this command's error, not as log lines.
  const link = new LinkClient({ name: ADMIN_NAME, role: "admin", secret, routers: [address], info: {}, log: pino({ level: "silent" }) });
  return new Promise((resolve) => {
    const done = (outcome: Outcome<Op>) => {
      clearTimeout(timer);
      link.stop();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: "failed", reason: `no answer within ${timeoutMs / 1000} s` }), timeoutMs);
    // The first failed attempt ends it (a refused connection at once): the link would retry with backoff.
    link.once("failed", (reason) => done({ kind: "failed", reason: failure(reason) }));
    link.once("up", () => {
      if (activeOnly && !link.peerActive) return done({ kind: "passive" });
      link.sendControl(request);
    });
    link.on("control", (msg) => {
      if (msg.op === answer) done({ kind: "answer", answer: msg as Answer<Op> });
    });
    link.start();
  });
}
