// The simulator's parts that need no server: scenario files and flags, the
// loopback rule, arrival schedules, the stream splitter, the online set and
// the merging of worker statistics.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { arrivalTimes, firstPort, plannedArrivals } from "../sim/arrivals.js";
import { applyFlags, parsePhases } from "../sim/flags.js";
import { expandSources, loopbackRefusal, parseHostPort } from "../sim/loopback.js";
import { OnlineSet } from "../sim/online-set.js";
import { defaultScenario, finish, loadScenarioFile, scenarioFromTable } from "../sim/scenario.js";
import { Merger, Recorder } from "../sim/stats.js";
import type { Ctx } from "../sim/client-ctx.js";
import { readMessage, wallMicros } from "../sim/chat-messages.js";
import { attr, firstChild, StanzaScanner } from "../sim/xml-scan.js";

const SCENARIOS = fileURLToPath(new URL("../sim/scenarios/", import.meta.url));

describe("scenarios", () => {
  it("reads every bundled example", () => {
    const files = fs.readdirSync(SCENARIOS).filter((f) => f.endsWith(".toml"));
    expect(files.sort()).toEqual(["chat.toml", "idle.toml", "login.toml", "steady.toml"]);
    for (const f of files) {
      const s = loadScenarioFile(path.join(SCENARIOS, f));
      expect(s.server.host).toBe("127.0.0.1");
      expect(plannedArrivals(s)).toBe(s.users.count);
    }
    const chat = loadScenarioFile(path.join(SCENARIOS, "chat.toml"));
    const c = chat.actions.find((a) => a.type === "chat")!;
    // total_rate 1000 shared by 1000 users: one message a second each.
    expect(c).toMatchObject({ type: "chat", total_rate: 1000, rate: 1, size: 100, to: "online" });
  });

  it("rejects unknown keys, bad values, and targets off this machine", () => {
    expect(() => scenarioFromTable({ server: { hots: "127.0.0.1" } })).toThrow("unknown key server.hots");
    expect(() => scenarioFromTable({ server: { security: "ssl" } })).toThrow("server.security must be one of none, starttls, direct");
    expect(() => scenarioFromTable({ server: { host: "10.1.2.3" } })).toThrow("10.1.2.3 is not a loopback address");
    expect(() => scenarioFromTable({ server: { host: "example.org" } })).toThrow("not a loopback address");
    expect(() => scenarioFromTable({ server: { sources: ["192.168.1.1"] } })).toThrow("not a loopback address");
    expect(() => scenarioFromTable({ users: { name: "user" } })).toThrow("must contain %d");
    expect(() => scenarioFromTable({ actions: [{ type: "dance" }] })).toThrow("actions[0].type must be one of");
    expect(() => scenarioFromTable({ actions: [{ type: "chat", rate: 1, duration: 5 }] })).toThrow("must come after a presence action");
    expect(() => scenarioFromTable({ actions: [{ type: "presence" }, { type: "chat", duration: 5 }] })).toThrow("either rate (per user) or total_rate");
    expect(() => scenarioFromTable({ run: { duration: 0 } })).toThrow("run.duration must be at least 1");
    expect(() => scenarioFromTable({ users: { count: 10, accounts: 5 } })).toThrow("users.accounts (5) is less than users.count (10)");
    // XEP-0352: the bench's idle sessions say it with --idle-inactive.
    expect(scenarioFromTable({ actions: [{ type: "presence" }, { type: "inactive" }] }).actions).toEqual([{ type: "presence" }, { type: "inactive" }]);
  });

  it("builds the common case from flags, and lets flags override a file", () => {
    const s = applyFlags(null, { port: "5322", users: "300", rate: "100", chatRate: "1", chatCount: "3", hold: "2", sm: true, sources: "127.0.0.2-127.0.0.4" });
    expect(s.server.ports).toEqual([5322]);
    expect(s.server.sources).toEqual(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    expect(s.arrival).toEqual([{ rate: 100, duration: 3 }]);
    expect(plannedArrivals(s)).toBe(300);
    expect(s.actions.map((a) => a.type)).toEqual(["sm", "roster", "presence", "sync", "chat", "sync", "think"]);
    const file = loadScenarioFile(path.join(SCENARIOS, "idle.toml"));
    const o = applyFlags(file, { port: "6000", users: "20", arrival: "10x1,5x2" }, true);
    expect(o.server.ports).toEqual([6000]);
    expect(applyFlags(null, { port: "5222, 5322" }).server.ports).toEqual([5222, 5322]);
    expect(() => applyFlags(null, { port: "5222,x" })).toThrow('--port must be a number (not "x")');
    expect(scenarioFromTable({ server: { port: [5222, 5322] } }).server.ports).toEqual([5222, 5322]);
    expect(() => scenarioFromTable({ server: { port: [] } })).toThrow("server.port must not be an empty list");
    expect(() => scenarioFromTable({ server: { port: [5222, 70000] } })).toThrow("server.port.1 must be at most 65535");
    expect(() => applyFlags(null, { spread: "dns" })).toThrow("--spread must be one of turn, random");
    expect(o.arrival).toEqual(parsePhases("10x1,5x2"));
    expect(plannedArrivals(o)).toBe(20);
    expect(o.actions).toEqual(file.actions);
    expect(() => applyFlags(file, { hold: "5" }, true)).toThrow("the scenario file lists actions");
  });

  it("follows redirects unless told to reconnect through its own port list; --sm-resume asks for resumption", () => {
    expect(defaultScenario().session.redirects).toBe("follow");
    expect(scenarioFromTable({ session: { redirects: "ignore" } }).session.redirects).toBe("ignore");
    expect(() => scenarioFromTable({ session: { redirects: "bounce" } })).toThrow("session.redirects must be one of follow, ignore");
    const s = applyFlags(null, { port: "5222,5322,5422", redirects: "ignore", smResume: true, chatRate: "1" });
    expect(s.session.redirects).toBe("ignore");
    expect(s.actions[0]).toEqual({ type: "sm", resume: true, request_every: 0 });
    expect(applyFlags(null, { sm: true }).actions[0]).toEqual({ type: "sm", resume: false, request_every: 0 });
    expect(() => applyFlags(null, { redirects: "maybe" })).toThrow("--redirects must be one of follow, ignore");
    // Reconnecting after a lost session is asked for apart from redirects, with its random wait.
    expect(defaultScenario().session).toMatchObject({ reconnect: false, reconnect_delay: 0 });
    expect(scenarioFromTable({ session: { reconnect: true, reconnect_delay: 5 } }).session).toMatchObject({ redirects: "follow", reconnect: true, reconnect_delay: 5 });
    expect(applyFlags(null, { reconnect: "2.5" }).session).toMatchObject({ reconnect: true, reconnect_delay: 2.5 });
    expect(() => scenarioFromTable({ session: { reconnect_delay: -1 } })).toThrow("session.reconnect_delay");
  });

  it("spreads users over the ports in turn, or at random as SRV records do, the same way every run", () => {
    const ports = (spread: string, seed = "1") => {
      const s = applyFlags(null, { port: "5222,5322", spread, seed });
      return Array.from({ length: 4000 }, (_, k) => firstPort(s, k));
    };
    expect(ports("turn").slice(0, 4)).toEqual([5222, 5322, 5222, 5322]);
    const random = ports("random");
    expect(ports("random")).toEqual(random);
    expect(ports("random", "2")).not.toEqual(random);
    // Chance, not turns: about half each (within 4 standard deviations of 2,000), and runs of one port.
    const first = random.filter((p) => p === 5222).length;
    expect(Math.abs(first - 2000)).toBeLessThan(4 * Math.sqrt(1000));
    expect(random.some((p, k) => k > 1 && p === random[k - 1] && p === random[k - 2])).toBe(true);
    expect(scenarioFromTable({ server: { port: [5222, 5322], spread: "random" } }).server.spread).toBe("random");
  });
});

describe("loopback addresses", () => {
  it("accepts 127.0.0.0/8, ::1 and localhost only", () => {
    for (const ok of ["127.0.0.1", "127.9.8.7", "localhost", "::1", "[::1]"]) expect(loopbackRefusal(ok)).toBeNull();
    for (const bad of ["10.0.0.1", "192.168.0.1", "8.8.8.8", "::2", "example.org", "128.0.0.1"]) expect(loopbackRefusal(bad)).toMatch(/not a loopback/);
  });

  it("expands source ranges and blocks", () => {
    expect(expandSources(["127.0.0.2-127.0.0.4", "127.0.1.0/31", "::1"])).toEqual(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.0", "127.0.1.1", "::1"]);
    expect(() => expandSources(["126.255.255.255-127.0.0.1"])).toThrow("not in 127.0.0.0/8");
    expect(() => expandSources(["127.0.0.9-127.0.0.2"])).toThrow("ends before it starts");
  });

  it("reads what a see-other-host names", () => {
    expect(parseHostPort("127.0.0.1:5322", 5222)).toEqual({ host: "127.0.0.1", port: 5322 });
    expect(parseHostPort("[::1]:5322", 5222)).toEqual({ host: "::1", port: 5322 });
    expect(parseHostPort("[::1]", 5222)).toEqual({ host: "::1", port: 5222 });
    expect(parseHostPort("::1", 5222)).toEqual({ host: "::1", port: 5222 });
    expect(parseHostPort("localhost", 5223)).toEqual({ host: "localhost", port: 5223 });
    expect(parseHostPort("host:99999", 5222)).toBeNull();
  });
});

describe("arrivals", () => {
  const sc = (over: object) => ({ ...defaultScenario(), ...over }) as ReturnType<typeof defaultScenario>;

  it("spaces arrivals evenly within each phase, capped by the user count", () => {
    const t = arrivalTimes(sc({ arrival: [{ rate: 10, duration: 1 }, { rate: 2, duration: 2 }], users: { ...defaultScenario().users, count: 100 } }));
    expect(Array.from(t.slice(0, 3))).toEqual([0, 100, 200]);
    expect(Array.from(t.slice(10))).toEqual([1000, 1500, 2000, 2500]);
    expect(arrivalTimes(sc({ arrival: [{ rate: 10, duration: 10 }], users: { ...defaultScenario().users, count: 7 } }))).toHaveLength(7);
  });

  it("draws Poisson arrivals the same way for the same seed", () => {
    const s = sc({ arrival: [{ rate: 100, duration: 10 }], users: { ...defaultScenario().users, count: 100_000 }, run: { ...defaultScenario().run, interarrival: "poisson", seed: 42 } });
    const a = arrivalTimes(s);
    expect(Array.from(arrivalTimes(s))).toEqual(Array.from(a));
    expect(a.length).toBeGreaterThan(850);
    expect(a.length).toBeLessThan(1150);
    expect(a.every((x, i) => i === 0 || x >= a[i - 1]!)).toBe(true);
  });

  it("drops arrivals after the run's duration", () => {
    const s = finish({ ...defaultScenario(), arrival: [{ rate: 10, duration: 100 }], users: { ...defaultScenario().users, count: 1000 }, run: { ...defaultScenario().run, duration: 5 } });
    expect(plannedArrivals(s)).toBe(50);
  });
});

describe("the stream splitter", () => {
  const collect = () => {
    const out: string[] = [];
    const sink = { streamOpen: () => out.push("open"), element: (n: string, x: string) => out.push(`${n}=${x}`), streamEnd: () => out.push("end") };
    return { out, sink };
  };

  it("splits top-level elements however the bytes are cut", () => {
    const stream =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>" +
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>" +
      " <message to='a@b' id=\"q'>\"><body>a &lt; b > c</body><!-- x<y --></message>\n" +
      "<r xmlns='urn:xmpp:sm:3'/><presence><x><![CDATA[<not-a-tag>]]></x></presence></stream:stream>";
    const whole = collect();
    new StanzaScanner().push(stream, whole.sink);
    expect(whole.out).toEqual([
      "open",
      "features=<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
      "message=<message to='a@b' id=\"q'>\"><body>a &lt; b > c</body><!-- x<y --></message>",
      "r=<r xmlns='urn:xmpp:sm:3'/>",
      "presence=<presence><x><![CDATA[<not-a-tag>]]></x></presence>",
      "end",
    ]);
    for (const size of [1, 2, 3, 7, 50]) {
      const cut = collect();
      const s = new StanzaScanner();
      for (let i = 0; i < stream.length; i += size) s.push(stream.slice(i, i + size), cut.sink);
      expect(cut.out, `chunks of ${size}`).toEqual(whole.out);
      expect(s.pending).toBe(0);
    }
  });

  it("stops at a reset made by the sink (a stream restart)", () => {
    const s = new StanzaScanner();
    const seen: string[] = [];
    s.push("<stream:stream><success/><junk/>", { streamOpen: () => {}, element: (n) => (seen.push(n), s.reset()), streamEnd: () => {} });
    expect(seen).toEqual(["success"]);
    expect(s.pending).toBe(0);
  });

  it("reads attributes and conditions", () => {
    expect(attr(`<iq type='result' id="b"><x id='no'/></iq>`, "id")).toBe("b");
    expect(attr(`<iq type='result'/>`, "id")).toBeUndefined();
    const err = `<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[::1]:5322</see-other-host><text xmlns='x'>go</text></stream:error>`;
    expect(firstChild(err)).toEqual({ name: "see-other-host", text: "[::1]:5322" });
    expect(firstChild(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><text>no</text><not-authorized/></failure>`)).toEqual({ name: "not-authorized", text: "" });
  });
});

describe("statistics", () => {
  it("counts a message once, a copy as a duplicate, and an earlier run's (left offline) apart", () => {
    const rec = new Recorder();
    const seen = new Set<number>();
    const ctx = {
      rec,
      runStartMicros: wallMicros() - 1_000_000,
      msgKey: (k: number, seq: number) => seq * 100 + k,
      // As the worker's: a copy is counted, and read no further.
      received: (key: number) => {
        if (seen.has(key)) {
          rec.count("msgs_duplicated");
          return false;
        }
        seen.add(key);
        return true;
      },
    } as unknown as Ctx;
    const message = (stamp: number, delayed: boolean) =>
      `<message type='chat'><body>xfsim ${stamp} o7.3 xx</body>${delayed ? "<delay xmlns='urn:xmpp:delay'/>" : ""}</message>`;
    // The earlier run's copy of user 7's third message, from offline storage: not this run's.
    readMessage(ctx, 1, message(ctx.runStartMicros - 5_000_000, true));
    expect(rec.c.msgs_earlier_run).toBe(1);
    expect(seen.size).toBe(0);
    // This run's own, live; then again.
    readMessage(ctx, 1, message(wallMicros(), false));
    expect([rec.c.msgs_received, rec.c.msgs_received_delayed, seen.size]).toEqual([1, 0, 1]);
    readMessage(ctx, 1, message(wallMicros(), false));
    expect(rec.c.msgs_duplicated).toBe(1);
  });

  it("picks random online users other than oneself", () => {
    const o = new OnlineSet(10);
    let i = 0;
    const rnd = () => [0.1, 0.5, 0.9][i++ % 3]!;
    expect(o.pick(rnd, 3)).toBe(-1);
    o.add(3);
    expect(o.pick(rnd, 3)).toBe(-1);
    o.add(5);
    o.add(7);
    o.delete(3);
    expect(o.size).toBe(2);
    for (let n = 0; n < 10; n++) expect([5, 7]).toContain(o.pick(rnd, 3));
    expect(o.pick(rnd, 5)).toBe(7);
    expect(o.has(5) && !o.has(3)).toBe(true);
    expect([0, 1, 2, 3, 4, 6, 8, 9]).toContain(o.pickOffline(Math.random, 1));
  });

  it("merges the workers' seconds into totals and one row a second", () => {
    const a = new Recorder();
    const b = new Recorder();
    const m = new Merger([0, 1]);
    a.count("logged_in", 3);
    a.latency("login", 10);
    a.latency("login", 20);
    b.count("logged_in", 1);
    b.latency("login", 30);
    b.error("stream-error:conflict");
    b.redirect("127.0.0.1:5322");
    expect(m.add(0, a.tick(0, { open: 3, sessions: 3, online: 3 }))).toEqual([]);
    const rows = m.add(1, b.tick(0, { open: 1, sessions: 1, online: 0 }));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ t: 1, sessions: 4, open: 4, logins: 4, errors: 1, redirects: 1 });
    expect(rows[0]!.login_p99).toBeCloseTo(30, 1);
    a.count("logged_in", 2);
    m.add(0, a.tick(1, { open: 5, sessions: 5, online: 5 }), true);
    // Worker 1 is gone: its last figures stand, and the row is made without it.
    const r2 = m.gone(1);
    expect(r2[0]).toMatchObject({ t: 2, sessions: 5, logins: 2 });
    expect(m.counters().logged_in).toBe(6);
    expect(m.errors()).toEqual({ "stream-error:conflict": 1 });
    expect(m.redirects()).toEqual({ "127.0.0.1:5322": 1 });
    expect(m.totals.get("login")!.totalCount).toBe(3);
  });
});
