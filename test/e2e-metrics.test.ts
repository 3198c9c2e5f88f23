// Every process of a farm serves /metrics, /healthz and /readyz on its
// metrics port: counters move under a short `xfarm sim` load, the sessions
// gauges agree with `xfarm status`, and /readyz says 503 while the router is
// gone, 200 once it is back (docs/metrics.md).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { documentedMetrics, has, httpGet, sample } from "./harness/metrics.js";
import { connectClient, type TestClient } from "./harness/xmppjs.js";
import { expectCleanRun, runCli } from "./sim-expect.js";
import type { SimResults } from "../sim/results.js";
import fs from "node:fs";
import { allocatorOf, findJemalloc } from "../lib/malloc.js";

const USERS = 40;
const MESSAGES_EACH = 3;
const PROCESSES = ["router-1", "sm-1", "c2s-1", "c2s-2"];

describe("metrics and health endpoints", () => {
  let farm: Farm;
  const clients: TestClient[] = [];
  const scrape = async (name: string) => {
    const r = await httpGet(farm.metricsUrl(name, "/metrics"));
    expect(r.status).toBe(200);
    return r.body;
  };
  const sum = async (names: string[], metric: string, labels?: Record<string, string>) => {
    let total = 0;
    for (const n of names) total += sample(await scrape(n), metric, labels);
    return total;
  };

  /** `xfarm sim` over STARTTLS with `mechanism`, in this process, its clients connecting to c2s-1 first. */
  const sim = (mechanism: string, args: string[]) =>
    runCli(["sim", "--port", String(farm.c2sPorts[0]!.port), "--security", "starttls", "--mechanism", mechanism, "--ca", process.env.XFARM_TEST_CERT!, "--workers", "0", ...args]);

  beforeAll(async () => {
    // A small floor, so that some of the users aimed at c2s-1 are redirected to c2s-2.
    farm = await Farm.create({ c2sCount: 2, logLevel: "info", c2s: { public_host: "127.0.0.1", auth_timeout: 30, redirect_floor: 5 } });
    await farm.start();
    await farm.waitReporting("c2s-1", 1);
    const r = await farm.cli("sim", "--create-accounts", "--users", String(USERS), "--password", "pw", "--iterations", "1024");
    expect(r.code, r.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await farm?.stop();
    farm?.cleanup();
  });

  it("every process is alive and ready, with its role's metrics and the default process metrics", async () => {
    // start.malloc = "auto": the supervisor preloads jemalloc into the front ends where it is installed (.ci/run installs it).
    const jemalloc = findJemalloc() !== null;
    if (process.env.CI === "true") expect(jemalloc, "libjemalloc2 installed").toBe(true);
    for (const name of PROCESSES) {
      expect(await httpGet(farm.metricsUrl(name, "/healthz"))).toEqual({ status: 200, body: "ok\n" });
      const ready = await farm.until(`${name} ready`, () => httpGet(farm.metricsUrl(name, "/readyz")), (r) => r.status === 200);
      expect(JSON.parse(ready.body)).toEqual({ ready: true, pid: farm.childPid(name) });
      const text = await scrape(name);
      const role = name.split("-")[0]!;
      expect(sample(text, "xfarm_process_resident_memory_bytes", { role, process: name })).toBeGreaterThan(0);
      expect(sample(text, "xfarm_nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
      expect(has(text, "xfarm_nodejs_eventloop_lag_p99_seconds")).toBe(true);
      const allocator = role === "c2s" && jemalloc ? "jemalloc" : "system";
      expect(sample(text, "xfarm_malloc_info", { allocator }), name).toBe(1);
      expect(allocatorOf(farm.childPid(name)), name).toBe(allocator);
    }
    const router = await scrape("router-1");
    expect(sample(router, "xfarm_router_active")).toBe(1);
    expect(sample(router, "xfarm_router_links", { link_role: "c2s" })).toBe(2);
    expect(sample(router, "xfarm_router_links", { link_role: "sm" })).toBe(1);
    for (const name of ["sm-1", "c2s-1", "c2s-2"]) expect(sample(await scrape(name), "xfarm_link_up")).toBe(1);
    expect(await httpGet(farm.metricsUrl("c2s-1", "/metrics").replace("/metrics", "/nothing"))).toMatchObject({ status: 404 });
  });

  it("counts logins, stanzas, bytes, redirects and SQL queries under a short xfarm sim load", { timeout: 120_000 }, async () => {
    const c2s = ["c2s-1", "c2s-2"];
    const before = {
      logins: await sum(c2s, "xfarm_c2s_logins_total", { mechanism: "SCRAM-SHA-256" }),
      messagesIn: await sum(c2s, "xfarm_c2s_stanzas_in_total", { kind: "message" }),
      messagesOut: await sum(c2s, "xfarm_c2s_stanzas_out_total", { kind: "message" }),
      bytesIn: await sum(c2s, "xfarm_c2s_received_bytes_total"),
      bytesOut: await sum(c2s, "xfarm_c2s_sent_bytes_total"),
      routed: await sum(["router-1"], "xfarm_router_frames_routed_total"),
      smFrames: await sum(["sm-1"], "xfarm_sm_frames_routed_total"),
    };
    const out = path.join(farm.dir, "sim-metrics.json");
    const r = await sim("SCRAM-SHA-256", [
      "--users", String(USERS),
      "--password", "pw",
      "--rate", "40",
      "--chat-rate", "5",
      "--chat-count", String(MESSAGES_EACH),
      "--duration", "60",
      "--login-timeout", "30",
      "--out", out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, "utf8")) as SimResults;
    expectCleanRun(res, USERS, USERS * MESSAGES_EACH);

    // A redirected user logs in on both front ends.
    expect((await sum(c2s, "xfarm_c2s_logins_total", { mechanism: "SCRAM-SHA-256" })) - before.logins).toBe(USERS + res.totals.redirects);
    expect((await sum(c2s, "xfarm_c2s_stanzas_in_total", { kind: "message" })) - before.messagesIn).toBeGreaterThanOrEqual(USERS * MESSAGES_EACH);
    expect((await sum(c2s, "xfarm_c2s_stanzas_out_total", { kind: "message" })) - before.messagesOut).toBeGreaterThanOrEqual(USERS * MESSAGES_EACH);
    expect(await sum(c2s, "xfarm_c2s_stanzas_in_total", { kind: "presence" })).toBeGreaterThan(0);
    expect(await sum(c2s, "xfarm_c2s_stanzas_in_total", { kind: "iq" })).toBeGreaterThan(0);
    expect((await sum(c2s, "xfarm_c2s_received_bytes_total")) - before.bytesIn).toBeGreaterThan(0);
    expect((await sum(c2s, "xfarm_c2s_sent_bytes_total")) - before.bytesOut).toBeGreaterThan(0);
    expect(res.totals.redirects).toBeGreaterThan(0);
    expect(sample(await scrape("c2s-1"), "xfarm_c2s_redirects_sent_total")).toBeGreaterThanOrEqual(res.totals.redirects);
    // Every client sent on arrived where it was sent, but one whose "expect" trailed it through the router.
    expect(sample(await scrape("c2s-2"), "xfarm_c2s_redirects_followed_total")).toBeGreaterThan(0);
    expect((await sum(["router-1"], "xfarm_router_frames_routed_total")) - before.routed).toBeGreaterThan(USERS * MESSAGES_EACH);
    expect((await sum(["sm-1"], "xfarm_sm_frames_routed_total")) - before.smFrames).toBeGreaterThan(USERS * MESSAGES_EACH);
    // Each login read the account (its keys and disabled flag) once; the sm read rosters.
    expect(await sum(c2s, "xfarm_sql_query_duration_seconds_count", { op: "getLoginAccount" })).toBeGreaterThanOrEqual(USERS);
    expect(await sum(["sm-1"], "xfarm_sql_query_duration_seconds_count", { op: "getRoster" })).toBeGreaterThanOrEqual(USERS);
    expect(await sum([...c2s, "sm-1"], "xfarm_sql_errors_total")).toBe(0);
    // Every metric docs/metrics.md lists is served by some process.
    const served = (await Promise.all(PROCESSES.map(scrape))).join("\n");
    expect([...documentedMetrics()].filter((m) => !has(served, m))).toEqual([]);
  });

  it("counts a failed login under its mechanism", async () => {
    const failures = await sum(["c2s-1", "c2s-2"], "xfarm_c2s_auth_failures_total");
    await expect(connectClient({ port: farm.c2sPorts[0]!.port, username: "user1", password: "wrong" })).rejects.toThrow();
    const text = await scrape("c2s-1");
    expect(sample(text, "xfarm_c2s_auth_failures_total") - failures).toBeGreaterThanOrEqual(1);
    expect(sample(text, "xfarm_c2s_auth_failures_total", { mechanism: "other" })).toBe(0);
  });

  it("counts PLAIN checks by how the password was found right: a PBKDF2 run first, then remembered; a wrong one runs PBKDF2 too", { timeout: 60_000 }, async () => {
    // Users of their own (the first sim's 20th and on), so that no other test's failed guess holds them up.
    const plain = (first: number, users: number, password: string) =>
      sim("PLAIN", ["--first", String(first), "--users", String(users), "--password", password, "--rate", "20", "--duration", "20", "--login-timeout", "15"]);
    const checks = async () => {
      const text = await scrape("c2s-1");
      return Object.fromEntries(["pbkdf2", "remembered", "vouched", "wrong"].map((proof) => [proof, sample(text, "xfarm_c2s_plain_checks_total", { proof })]));
    };
    const at0 = await checks();
    // The users logged in before with SCRAM only: the first PLAIN login of each runs a PBKDF2, at the front end it reached.
    expect((await plain(20, 3, "pw")).code).toBe(0);
    const at1 = await checks();
    expect(at1).toEqual({ ...at0, pbkdf2: at0.pbkdf2! + 3 });
    expect((await plain(20, 3, "pw")).code).toBe(0);
    expect(await checks()).toEqual({ ...at1, remembered: at1.remembered! + 3 });
    // The simulator counts the refused login among its results.
    await plain(30, 1, "wrong");
    expect(await checks()).toEqual({ ...at1, remembered: at1.remembered! + 3, wrong: at1.wrong! + 1 });
  });

  it("the sessions gauges agree with xfarm status", async () => {
    for (const [user, c2s] of [["user1", 0], ["user2", 0], ["user3", 1]] as const) {
      clients.push(await connectClient({ port: farm.c2sPorts[c2s]!.port, username: user, password: "pw", resource: "r" }));
    }
    // Load reports come every 2 s: wait until status and the gauges read the same, three sessions in all.
    await farm.until(
      "status and gauges agree",
      async () => {
        const entries = await farm.status();
        return Promise.all(["c2s-1", "c2s-2"].map(async (n) => [entries.find((e) => e.name === n)?.load?.sessions, sample(await scrape(n), "xfarm_c2s_sessions")]));
      },
      (pairs) => pairs.every(([status, gauge]) => status === gauge) && pairs.reduce((s, [, g]) => s + (g ?? 0), 0) === 3,
    );
    expect(sample(await scrape("sm-1"), "xfarm_sm_sessions")).toBe(3);
  });

  it("/readyz is 503 while the router is gone, 200 again once it is back", { timeout: 60_000 }, async () => {
    // The supervisor is held so that the router stays dead until the test lets it restart it.
    const supervisor = farm.pid!;
    process.kill(supervisor, "SIGSTOP");
    try {
      process.kill(farm.childPid("router-1"), "SIGKILL");
      for (const name of ["c2s-1", "sm-1"]) {
        const r = await farm.until(`${name} unready`, () => httpGet(farm.metricsUrl(name, "/readyz")), (a) => a.status === 503);
        expect(JSON.parse(r.body)).toEqual({ ready: false, cause: "link", reason: "not linked to the router", pid: farm.childPid(name) });
        expect(sample(await scrape(name), "xfarm_link_up")).toBe(0);
        // Alive all the same.
        expect((await httpGet(farm.metricsUrl(name, "/healthz"))).status).toBe(200);
      }
    } finally {
      process.kill(supervisor, "SIGCONT");
    }
    for (const name of PROCESSES) await farm.until(`${name} ready again`, () => httpGet(farm.metricsUrl(name, "/readyz")), (a) => a.status === 200, 30_000);
  });
});
