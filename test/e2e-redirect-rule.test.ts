// The redirect rule on a real farm of two front ends, seen from clients that
// do not follow <see-other-host/> (docs/redirection.md): the raw stream
// reconnects where it was, as Smack, Conversations or Gajim do; the
// libstrophe-style client reconnects through its host list (both front
// ends), first the one it had. Within the threshold nobody is redirected;
// with one front end far over ("a box just added"), such a client is served
// at its second attempt, and followers bring the farm back within the
// threshold without a redirect the other way. Redirects are counted from
// the see-other-host the clients receive.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { HEADER, type RawStream, secureStream } from "./harness/raw-stream.js";

/** The shipped c2s.redirect_floor: the test runs the default rule. */
const FLOOR = 200;
type Kind = "raw" | "libstrophe" | "follower";

interface Login {
  stream: RawStream;
  /** The port of each connection made, in order. */
  ports: number[];
  /** What each see-other-host received named, with the port that sent it. */
  redirects: { from: number; to: string }[];
}

describe("the redirect rule, for clients that do not follow redirects", () => {
  let farm: Farm;
  let p1: number;
  let p2: number;
  let nextUser = 0;
  const held: RawStream[] = [];

  const c2sStatus = async (): Promise<Record<string, { sessions: number; lag: number } | null>> => {
    const entries = (await farm.status()).filter((e) => e.role === "c2s");
    return Object.fromEntries(entries.map((e) => [e.name, e.load ? { sessions: e.load.sessions, lag: e.load.lag } : null]));
  };
  const until = async <T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> => {
    const end = Date.now() + ms;
    for (let v = await read(); ; v = await read()) {
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`${what}: not reached, last ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  /** One connection: STARTTLS, PLAIN, the restarted stream; resolves once bound or redirected. */
  const attempt = async (port: number, user: string): Promise<{ stream: RawStream; redirect: string | null }> => {
    const s = await secureStream(port);
    s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString("base64")}</auth>`);
    await s.until(/<success/);
    s.send(HEADER());
    await s.until(/<bind xmlns|<\/see-other-host>/);
    const m = /<see-other-host [^>]*>([^<]+)<\/see-other-host>/.exec(s.received);
    if (m) {
      // As a client does on a stream error: gone at once, without waiting for the server's close.
      s.destroy();
      return { stream: s, redirect: m[1]! };
    }
    s.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await s.until(/<jid>/);
    return { stream: s, redirect: null };
  };

  /** A new account logs in, aimed at `port`, and behaves as `kind` on a redirect (three connections at most). */
  const login = async (kind: Kind, port: number): Promise<Login> => {
    const user = `u${++nextUser}`;
    const hosts = kind === "libstrophe" ? [port, port === p1 ? p2 : p1] : [port];
    const out: Login = { stream: null as unknown as RawStream, ports: [], redirects: [] };
    let at = port;
    for (let i = 0; i < 3; i++) {
      out.ports.push(at);
      const r = await attempt(at, user);
      if (!r.redirect) {
        out.stream = r.stream;
        held.push(r.stream);
        return out;
      }
      out.redirects.push({ from: at, to: r.redirect });
      // A follower goes where it is told; the others start again from the address they had.
      at = kind === "follower" ? Number(r.redirect.split(":").at(-1)) : hosts[0]!;
    }
    throw new Error(`${user} (${kind}) not served in three connections: ${JSON.stringify(out)}`);
  };

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, c2s: { public_host: "127.0.0.1" } });
    await farm.start();
    [p1, p2] = farm.c2sPorts.map((p) => p.port) as [number, number];
    // Few PBKDF2 iterations: hundreds of logins in one test.
    await farm.addUsers("u", 1500, "pw", 64);
    // The router has both front ends' load (and shares it with each within a second).
    await until("both loads reported", c2sStatus, (s) => !!s["c2s-1"] && !!s["c2s-2"]);
  }, 60_000);

  afterAll(async () => {
    for (const s of held) s.destroy();
    await farm?.stop();
    farm?.cleanup();
  });

  it("within the threshold, 200 logins on one front end are never redirected", { timeout: 120_000 }, async () => {
    const logins: Login[] = [];
    for (let i = 0; i < FLOOR; i++) logins.push(await login(i % 2 ? "libstrophe" : "raw", p1));
    expect(logins.flatMap((l) => l.redirects)).toEqual([]);
    expect(logins.every((l) => l.ports.length === 1)).toBe(true);
    const s = await until("200 sessions reported", c2sStatus, (s) => s["c2s-1"]?.sessions === FLOOR);
    expect(s["c2s-2"]!.sessions).toBe(0);
    // The threshold is live: 200 over is within it, 201 over is not.
    expect((await login("raw", p1)).redirects).toEqual([]);
    const over = await login("raw", p1);
    expect(over.redirects).toEqual([{ from: p1, to: `127.0.0.1:${p2}` }]);
    expect(over.ports).toEqual([p1, p1]);
  });

  it("far over (a box just added): a non-follower is served at its second attempt, followers even the farm out", { timeout: 180_000 }, async () => {
    // c2s-2 goes silent until the router cuts it, while c2s-1 takes 150 more.
    const pid = farm.childPid("c2s-2");
    process.kill(pid, "SIGSTOP");
    try {
      await until("c2s-2 cut", c2sStatus, (s) => !("c2s-2" in s));
      for (let i = 0; i < 150; i++) await login("raw", p1);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Back, and reporting a normal event-loop delay (its first report after the stop shows the stop).
    await until("c2s-2 back", c2sStatus, (s) => !!s["c2s-2"] && s["c2s-2"].lag < 500 && s["c2s-1"]!.sessions === FLOOR + 152);
    // c2s-1 starts redirecting once it has heard of c2s-2: the first follower sent there says so.
    const probes = await until("c2s-1 redirecting", () => login("follower", p1), (l) => l.redirects.length > 0);
    expect(probes.ports).toEqual([p1, p2]);

    // Each non-follower pays one reconnect: see-other-host, then served where it was.
    const kinds: Kind[] = Array.from({ length: 20 }, (_, i) => (i % 2 ? "libstrophe" : "raw"));
    for (const kind of kinds) {
      const l = await login(kind, p1);
      expect(l.redirects, kind).toEqual([{ from: p1, to: `127.0.0.1:${p2}` }]);
      expect(l.ports, kind).toEqual([p1, p1]);
    }

    // Followers, all aimed at c2s-1, until it serves one itself: the gap is down to the low mark.
    let followers = 0;
    const sentBack: Login["redirects"] = [];
    for (;;) {
      const l = await login("follower", p1);
      followers++;
      sentBack.push(...l.redirects.filter((r) => r.from === p2));
      if (l.ports.length === 1) break;
      expect(l.ports).toEqual([p1, p2]);
      expect(followers).toBeLessThan(600);
    }
    // c2s-2 never sent anyone back, and the farm is within the threshold, c2s-1 still the fuller
    // (by about the low mark, 100: clients sent in the second before a report may count twice).
    expect(sentBack).toEqual([]);
    // Every account logged in once and holds its session.
    const s = await until("the sessions reported", c2sStatus, (s) => s["c2s-1"]!.sessions + s["c2s-2"]!.sessions === nextUser);
    const gap = s["c2s-1"]!.sessions - s["c2s-2"]!.sessions;
    expect(gap).toBeGreaterThan(FLOOR / 4);
    expect(gap).toBeLessThanOrEqual(FLOOR);
  });
});
