// The soak's and the fault harness's raw connection (sim/soak-conn.ts)
// logging in through the shared login against a real farm of two front
// ends: PLAIN and SCRAM-SHA-1, a stop before bind and the bind after it,
// a refused password named as the soak reports it, and a <see-other-host/>
// for balance followed to the other front end.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusEntry } from "../lib/link/control.js";
import { logIn, type LoginOptions, type SoakConn } from "../sim/soak-conn.js";
import { attr } from "../sim/xml-scan.js";
import { Farm } from "./harness/farm.js";

const ANSWER_MS = 15_000;

type Loads = Record<string, { sessions: number } | null>;

/** Each front end's load as the router has it (null before its first report). */
async function c2sLoads(farm: Farm): Promise<Loads> {
  const r = await farm.cli("status", "--json");
  expect(r.code, r.stderr).toBe(0);
  const entries = (JSON.parse(r.stdout) as { entries: StatusEntry[] }).entries.filter((e) => e.role === "c2s");
  return Object.fromEntries(entries.map((e) => [e.name, e.load && { sessions: e.load.sessions }]));
}

/** A farm of two front ends with accounts u1…u4, and logIn()'s options aimed at the first. */
function twoFrontEnds(c2s: Record<string, unknown>) {
  const t = { farm: null as unknown as Farm, conns: [] as SoakConn[] };
  const options = (o: Partial<LoginOptions>): LoginOptions => ({
    port: t.farm.c2sPorts[0]!.port,
    localAddress: "127.0.0.1",
    user: "u1",
    password: "pw",
    mechanism: "PLAIN",
    answerMs: ANSWER_MS,
    track: (c) => t.conns.push(c),
    ...o,
  });
  beforeAll(async () => {
    t.farm = await Farm.create({ c2sCount: 2, c2s: { public_host: "127.0.0.1", ...c2s } });
    await t.farm.start();
    await t.farm.addUsers("u", 4, "pw", 64);
  }, 60_000);
  afterAll(async () => {
    for (const c of t.conns) c.destroy();
    await t.farm?.stop();
    t.farm?.cleanup();
  });
  return { t, options };
}

describe("sim/soak-conn.ts logIn(), within the redirect floor", () => {
  const { t, options } = twoFrontEnds({});

  it.each(["PLAIN", "SCRAM-SHA-1"] as const)("logs in with %s over STARTTLS and binds", async (mechanism) => {
    const { conn, jid, port, redirects } = await logIn(options({ mechanism }));
    expect(jid).toMatch(/^u1@localhost\/.+/);
    expect({ port, redirects }).toEqual({ port: t.farm.c2sPorts[0]!.port, redirects: 0 });
    // The stream goes on after the login: the farm answers a ping.
    conn.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    expect(attr((await conn.next((e) => e.name === "iq", ANSWER_MS)).xml, "type")).toBe("result");
  });

  it("stops once authenticated, and binds through the same login afterwards", async () => {
    const { conn, jid } = await logIn(options({ user: "u2", until: "authenticated" }));
    expect(jid).toBeNull();
    expect(await conn.bind(ANSWER_MS)).toMatch(/^u2@localhost\/.+/);
  });

  it("rejects a wrong password, named as the soak reports it", async () => {
    // An address of its own: the failed login's throttle holds back no other login.
    await expect(logIn(options({ user: "u3", password: "wrong", localAddress: "127.0.0.9" }))).rejects.toThrow(/^SASL failure not-authorized$/);
  });
});

describe("sim/soak-conn.ts logIn(), with no redirect floor", () => {
  // Any session over the other front end's share is worth a redirect.
  const { t, options } = twoFrontEnds({ redirect_floor: 0, redirect_margin: 0 });

  it("follows <see-other-host/> to the front end it names", async () => {
    const [p1, p2] = t.farm.c2sPorts.map((p) => p.port);
    await expect.poll(async () => Object.values(await c2sLoads(t.farm)).every((l) => l !== null), { timeout: 30_000 }).toBe(true);
    // The first session is served where it lands: c2s-1 holds no more than c2s-2 yet.
    expect(await logIn(options({ user: "u1" }))).toMatchObject({ port: p1, redirects: 0 });
    await expect.poll(async () => (await c2sLoads(t.farm))["c2s-1"]?.sessions, { timeout: 30_000 }).toBe(1);
    const { jid, port, redirects } = await logIn(options({ user: "u2", mechanism: "SCRAM-SHA-1" }));
    expect(jid).toMatch(/^u2@localhost\/.+/);
    expect({ port, redirects }).toEqual({ port: p2, redirects: 1 });
  });
});
