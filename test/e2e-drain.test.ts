// A drain that ends: 300 clients of three kinds on one front end, numbered
// messages sent to them all along, the front end drained, SIGKILLed halfway
// (its supervisor restarts it) and drained to the end; then undrained.
// Every client ends logged in on another front end, the drained one holds no
// connection, and every message arrived. Real processes, xmpp.js and raw streams.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusEntry } from "../lib/link/control.js";
import { Farm } from "./harness/farm.js";
import { ListClient, listXmppjs, type Counted } from "./harness/list-clients.js";
import { portOpen } from "../sim/port-open.js";
import { boundStream, loggedInStream, type RawStream } from "./harness/raw-stream.js";
import { connectClient, type TestClient } from "./harness/xmppjs.js";

/** Of each kind: xmpp.js following redirects, xmpp.js not following (both XEP-0198), raw streams without it, not following. */
const PER_KIND = 100;
const CLIENTS = 3 * PER_KIND;
const RATE = 30;

describe("a drain that ends", () => {
  let farm: Farm;
  const clients: { kind: "follows" | "resumes" | "relogs"; c: Counted }[] = [];
  let sender: RawStream;
  let extra: TestClient | null = null;
  /** Message ids sent to each client, by client index. */
  const sent: string[][] = Array.from({ length: CLIENTS }, () => []);
  let running = false;
  let sentCount = 0;

  const status = async (): Promise<Map<string, StatusEntry>> => {
    const entries = await farm.status();
    return new Map(entries.filter((e) => e.role === "c2s").map((e) => [e.name, e]));
  };
  const pollStatus = async (ok: (s: Map<string, StatusEntry>) => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    let last = await status();
    while (!ok(last)) {
      if (Date.now() > end) throw new Error(`not reached in time: ${JSON.stringify([...last.values()].map((e) => [e.name, e.info, e.load]))}`);
      await new Promise((r) => setTimeout(r, 250));
      last = await status();
    }
    return last;
  };
  /** Every message sent so far has arrived at its client (the ids it lacks, at most 10). */
  const missing = () =>
    clients.flatMap(({ c }, i) => sent[i]!.filter((id) => !c.received.has(id)).map((id) => `u${i + 1}:${id}`)).slice(0, 10);

  /** Numbered messages, to the bare JIDs, round the clients, from a client on c2s-2, until stopped. */
  const send = async () => {
    running = true;
    let next = 0;
    while (running) {
      for (let k = 0; k < 5; k++) {
        const i = next++ % CLIENTS;
        const id = `m${++sentCount}`;
        sent[i]!.push(id);
        sender.send(`<message to='u${i + 1}@localhost' id='${id}' type='chat'><body>${id}</body></message>`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    farm = await Farm.create({
      c2sCount: 3,
      // No balancing (a floor no farm here reaches): every client stays on the front end it connected to, c2s-1, until the drain.
      c2s: { public_host: "127.0.0.1", redirect_floor: 1_000_000, resume_timeout: 60 },
    });
    await farm.start();
    // Few PBKDF2 iterations: xmpp.js hashes in plain JS, and 300 logins in one test process must not stall it.
    await farm.addUsers("u", CLIENTS + 1, "pw", 64);
    await farm.addUsers("s", 1, "pw", 64);
    await farm.waitReporting("c2s-1", 2);
  }, 90_000);

  afterAll(async () => {
    running = false;
    sender?.destroy();
    await Promise.all([...clients.map(({ c }) => c.stop()), extra?.stop()]);
    await farm.stop();
    farm.cleanup();
  });

  it("empties a front end of every kind of client, through its restart, and loses no message", { timeout: 180_000 }, async () => {
    const [p1, p2, p3] = farm.c2sPorts.map((p) => p.port) as [number, number, number];
    // As SRV records give them: the drained front end first, then one of the others.
    const list = (i: number) => [p1, i % 2 ? p3 : p2];
    let next = 0;
    const worker = async () => {
      while (next < CLIENTS) {
        const i = next++;
        const username = `u${i + 1}`;
        const kind = i % 3 === 0 ? "follows" : i % 3 === 1 ? "resumes" : "relogs";
        if (kind === "relogs") {
          const c = new ListClient(list(i), username, "pw");
          await c.start();
          clients[i] = { kind, c };
        } else clients[i] = { kind, c: await listXmppjs({ ports: list(i), username, password: "pw", follow: kind === "follows" }) };
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    expect(clients.every(({ c }) => c.port() === p1)).toBe(true);
    await pollStatus((s) => s.get("c2s-1")!.load?.sessions === CLIENTS);

    sender = (await boundStream(p2, "s1", "pw")).stream;
    const sendLoop = send();
    await expect.poll(() => sentCount, { timeout: 10_000 }).toBeGreaterThan(CLIENTS);

    const started = Date.now();
    const drain = farm.cli("c2s", "drain", "c2s-1", "--rate", String(RATE), "--wait", "--timeout", "120");
    // Halfway: no message on its way (what a SIGKILL takes with it is not the drain's to keep), then the kill.
    await pollStatus((s) => (s.get("c2s-1")!.load?.connections ?? CLIENTS) <= (2 * CLIENTS) / 3);
    running = false;
    await sendLoop;
    await expect.poll(missing, { timeout: 30_000, interval: 250 }).toEqual([]);
    const pid = farm.childPid("c2s-1");
    const onKill = clients.filter(({ c }) => c.port() === p1 || c.port() === null).length;
    expect(onKill).toBeGreaterThan(0);
    const killed = Date.now();
    process.kill(pid, "SIGKILL");
    const again = send();
    // The supervisor restarts it; the router tells it at once that it is drained.
    await farm.waitRestarted("c2s-1", pid);
    await farm.waitLinked(killed, ["c2s-1"]);
    await pollStatus((s) => s.get("c2s-1")?.info.draining === true);
    await expect.poll(() => portOpen(p1), { timeout: 10_000, interval: 200 }).toBe(false);

    const waited = await drain;
    expect(waited.code, waited.stdout + waited.stderr).toBe(0);
    expect(waited.stdout).toMatch(/c2s-1 is draining/);
    expect(waited.stdout).toMatch(/c2s-1: \d+ sessions, \d+ connections left/);
    expect(waited.stdout).toMatch(/c2s-1 is drained: no connection left/);
    const drainedAfter = Date.now() - started;

    // Every client is logged in elsewhere; the drained front end holds nothing.
    await expect.poll(() => clients.filter(({ c }) => c.port() !== p2 && c.port() !== p3).length, { timeout: 30_000 }).toBe(0);
    const end = await pollStatus((s) => s.get("c2s-2")!.load!.sessions + s.get("c2s-3")!.load!.sessions === CLIENTS + 1);
    expect(end.get("c2s-1")!.load).toMatchObject({ sessions: 0, connections: 0 });
    const table = (await farm.cli("status")).stdout;
    expect(table).toMatch(/^c2s-1 +c2s +\S+ +\S+ +drained /m);
    // Its progress line, counted since the drain began again at its restart.
    expect(table).toMatch(/^c2s-1 drained: no connection left, \d+ moved in \d+s$/m);

    // Every message arrived: the ones sent before, during and after the kill.
    running = false;
    await again;
    await expect.poll(missing, { timeout: 30_000, interval: 250 }).toEqual([]);
    const received = clients.reduce((n, { c }) => n + [...c.received.values()].reduce((a, b) => a + b, 0), 0);
    const byKind = (kind: string) => clients.filter((x) => x.kind === kind).map(({ c }) => c);
    const figures = Object.fromEntries(
      ["follows", "resumes", "relogs"].map((k) => [
        k,
        { resumed: byKind(k).reduce((n, c) => n + c.resumes, 0), loggedInAgain: byKind(k).reduce((n, c) => n + c.relogins, 0) },
      ]),
    );
    console.log(JSON.stringify({ sent: sentCount, received, drainedAfterMs: drainedAfter, onC2s1AtKill: onKill, ...figures }));
    expect(received).toBeGreaterThanOrEqual(sentCount);
    // The XEP-0198 clients moved by the drain resumed; only those the kill cut off began anew.
    for (const kind of ["follows", "resumes"]) {
      expect(figures[kind]!.resumed).toBeGreaterThan(0);
      expect(figures[kind]!.loggedInAgain).toBeLessThanOrEqual(onKill);
    }
    expect(figures.relogs!.loggedInAgain).toBeGreaterThanOrEqual(PER_KIND);
  });

  it("takes clients again once undrained", async () => {
    const port = farm.c2sPorts[0]!.port;
    const r = await farm.cli("c2s", "undrain", "c2s-1");
    expect(r.stdout).toMatch(/c2s-1 is no longer drained/);
    await pollStatus((s) => !s.get("c2s-1")!.info.draining);
    await expect.poll(() => portOpen(port), { timeout: 10_000, interval: 200 }).toBe(true);
    extra = await connectClient({ port, username: `u${CLIENTS + 1}`, password: "pw" });
    await pollStatus((s) => s.get("c2s-1")!.load?.sessions === 1);
    expect((await farm.cli("status")).stdout).toMatch(/^c2s-1 +c2s +\S+ +\S+ +active /m);
  });

  it("passes on what a client without XEP-0198 wrote before it read its redirect", async () => {
    // The client writes while its see-other-host is on the way, as a chatty client does; the drained
    // front end reads on until the client closes its side, and routes its messages.
    await farm.addUsers("late", 1, "pw", 64);
    const { stream } = await boundStream(farm.c2sPorts[0]!.port, "late1", "pw");
    await pollStatus((s) => s.get("c2s-1")!.load?.sessions === 2);
    expect((await farm.cli("c2s", "drain", "c2s-1", "--rate", "50")).code).toBe(0);
    await stream.until(/<\/see-other-host>/);
    const to = clients[0]!.c;
    stream.send("<message to='u1@localhost' id='late-1' type='chat'><body>written before the redirect was read</body></message>");
    stream.send("</stream:stream>");
    stream.end();
    await expect.poll(() => to.received.get("late-1"), { timeout: 10_000 }).toBe(1);
    expect((await farm.cli("c2s", "undrain", "c2s-1")).code).toBe(0);
  });

  it("routes nothing a client with XEP-0198 but no resumption wrote late: it sends that again, and it comes once", async () => {
    await pollStatus((s) => !s.get("c2s-1")!.info.draining);
    await farm.addUsers("acked", 2, "pw", 64);
    const port = farm.c2sPorts[0]!.port;
    const acked = (await boundStream(port, "acked1", "pw")).stream;
    const plain = (await boundStream(port, "acked2", "pw")).stream;
    acked.send("<enable xmlns='urn:xmpp:sm:3'/>");
    await acked.until(/<enabled /);
    expect((await farm.cli("c2s", "drain", "c2s-1", "--rate", "50")).code).toBe(0);
    await Promise.all([acked, plain].map((s) => s.until(/<\/see-other-host>/)));
    const to = clients[0]!.c;
    acked.send("<message to='u1@localhost' id='acked-late' type='chat'><body>never acknowledged</body></message>");
    acked.send("</stream:stream>");
    acked.end();
    // Once the front end closed the first stream it had read all it would; what it routed from the second comes after.
    await acked.untilClosed();
    plain.send("<message to='u1@localhost' id='plain-after' type='chat'><body>read on</body></message>");
    plain.send("</stream:stream>");
    plain.end();
    await expect.poll(() => to.received.get("plain-after"), { timeout: 10_000 }).toBe(1);
    expect(to.received.get("acked-late")).toBeUndefined();

    // Logged in anew elsewhere, it sends again what the drained front end never acknowledged.
    const again = (await boundStream(farm.c2sPorts[1]!.port, "acked1", "pw")).stream;
    again.send("<message to='u1@localhost' id='acked-late' type='chat'><body>never acknowledged</body></message>");
    await expect.poll(() => to.received.get("acked-late"), { timeout: 10_000 }).toBe(1);
    again.destroy();
    expect((await farm.cli("c2s", "undrain", "c2s-1")).code).toBe(0);
  });

  it("ends even when a client sent away never resumes: its sm keeps the session, and the client resumes it later", { timeout: 90_000 }, async () => {
    const NS_SM = "urn:xmpp:sm:3";
    await pollStatus((s) => !s.get("c2s-1")!.info.draining);
    await expect.poll(() => portOpen(farm.c2sPorts[0]!.port), { timeout: 10_000, interval: 200 }).toBe(true);
    await farm.addUsers("away", 2, "pw", 64);
    const { stream: first, jid } = await boundStream(farm.c2sPorts[0]!.port, "away1", "pw");
    const { stream: writer } = await boundStream(farm.c2sPorts[1]!.port, "away2", "pw");
    first.send(`<enable xmlns='${NS_SM}' resume='true'/>`);
    const previd = /<enabled [^>]*id=['"]([^'"]+)['"]/.exec(await first.until(/<enabled [^>]*>/))![1]!;

    // The drain waits less than the session's resumption window (60 s here): the front end must let it go.
    const drain = farm.cli("c2s", "drain", "c2s-1", "--rate", "50", "--wait", "--timeout", "40");
    await first.until(/<\/see-other-host>/);
    first.destroy();
    writer.send(`<message to='${jid}' id='while-away' type='chat'><body>kept for the resumption</body></message>`);
    const waited = await drain;
    expect(waited.code, waited.stdout + waited.stderr).toBe(0);
    expect(waited.stdout).toMatch(/c2s-1 is drained: no connection left/);

    // Long after, the client resumes on another front end: the sm had the session, and what came for it.
    const next = await loggedInStream(farm.c2sPorts[1]!.port, "away1", "pw");
    next.send(`<resume xmlns='${NS_SM}' previd='${previd}' h='0'/>`);
    await next.until(/<resumed [^>]*>/);
    await next.until(/while-away/);
    expect(next.received).not.toMatch(/<failed /);
    expect(await farm.offlineCount(jid.split("/")[0]!)).toBe(0);
    next.destroy();
    writer.destroy();
    expect((await farm.cli("c2s", "undrain", "c2s-1")).code).toBe(0);
  });
});

describe("a full front end", () => {
  let farm: Farm;
  const streams: RawStream[] = [];
  const CAPACITY = 5;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2, c2s: { public_host: "127.0.0.1", capacity: CAPACITY, redirect_margin: 1000 } });
    await farm.start();
    await farm.addUsers("u", 2 * CAPACITY, "pw", 64);
    await farm.waitReporting("c2s-1", 1);
  }, 90_000);

  afterAll(async () => {
    for (const s of streams) s.destroy();
    await farm.stop();
    farm.cleanup();
  });

  const c2s = async (name: string): Promise<StatusEntry> => {
    const r = await farm.cli("status", "--json");
    return (JSON.parse(r.stdout) as { entries: StatusEntry[] }).entries.find((e) => e.name === name)!;
  };

  it("closes its ports at capacity while another front end takes clients, and opens them under 90 %", { timeout: 60_000 }, async () => {
    const [p1, p2] = farm.c2sPorts.map((p) => p.port) as [number, number];
    for (let i = 1; i <= CAPACITY; i++) streams.push((await boundStream(p1, `u${i}`, "pw")).stream);
    await expect.poll(() => c2s("c2s-1").then((e) => e.info.full), { timeout: 10_000, interval: 250 }).toBe(true);
    expect(await portOpen(p1)).toBe(false);
    expect(await portOpen(p2)).toBe(true);
    expect((await farm.cli("status")).stdout).toMatch(/^c2s-1 +c2s +\S+ +\S+ +full /m);

    // The other one reaches its capacity too, but stays open: the last front end open never closes.
    for (let i = CAPACITY + 1; i <= 2 * CAPACITY; i++) streams.push((await boundStream(p2, `u${i}`, "pw")).stream);
    await expect.poll(() => c2s("c2s-2").then((e) => e.load?.sessions), { timeout: 10_000, interval: 250 }).toBe(CAPACITY);
    expect((await c2s("c2s-2")).info.full).toBeUndefined();
    expect(await portOpen(p2)).toBe(true);

    // Under 90 % of its capacity, the first opens again by itself.
    streams.shift()!.destroy();
    await expect.poll(() => c2s("c2s-1").then((e) => e.info.full), { timeout: 10_000, interval: 250 }).toBeUndefined();
    await expect.poll(() => portOpen(p1), { timeout: 10_000, interval: 200 }).toBe(true);
    expect((await farm.cli("status")).stdout).toMatch(/^c2s-1 +c2s +\S+ +\S+ +active /m);
  });
});
