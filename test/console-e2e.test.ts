// The admin web console (docs/console.md) end to end: a real farm with its
// console on, Debian's Chromium driven headless by playwright-core, plain
// fetch for what a browser would not send, and real xmpp.js clients for what
// the controls do to them. Screenshots go to test/output/console/.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusEntry } from "../lib/link/control.js";
import { Farm } from "./harness/farm.js";
import { listXmppjs, type ListXmppjs } from "./harness/list-clients.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.resolve("test/output/console");
// CI installs Chromium: there a missing one fails the test rather than skipping it.
const suite = fs.existsSync(CHROMIUM) || process.env.CI ? describe : describe.skip;

suite("the admin console", () => {
  let farm: Farm;
  let base: string;
  let browser: Browser;
  let page: Page;
  const clients: ListXmppjs[] = [];

  const shot = async (name: string) => {
    const file = path.join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    process.stdout.write(`screenshot: ${file}\n`);
  };
  const c2s = (entries: StatusEntry[], name: string) => entries.find((e) => e.name === name);
  /** Logs in with xmpp.js; the error's condition when the login fails. */
  const loginFails = (username: string, password: string): Promise<string | null> =>
    connectClient({ port: farm.c2sPorts[1]!.port, username, password }).then(
      async (c) => {
        await c.stop();
        return null;
      },
      (err: { condition?: string }) => err.condition ?? String(err),
    );
  /** Waits until the element `selector` shows text `want` (or matching it); the page polls the router every 2 s. */
  const seeText = async (selector: string, want: string | RegExp) => {
    const [source, exact] = typeof want === "string" ? [want, true] : [want.source, false];
    await page.waitForFunction(
      ([sel, src, ex]) => {
        // Runs in the page; the tests compile without the DOM's types.
        const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
        const t = doc.querySelector(sel as string)?.textContent ?? null;
        return t !== null && (ex ? t === src : new RegExp(src as string).test(t));
      },
      [selector, source, exact] as const,
      { timeout: 15_000 },
    );
  };
  const seen = (selector: string) => page.locator(selector).waitFor({ state: "visible", timeout: 15_000 });
  const logIn = async (jid: string, password: string) => {
    await page.goto(`${base}/login`);
    await page.fill("#jid", jid);
    await page.fill("#password", password);
    await page.click("#login");
  };

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    // Few PBKDF2 iterations, for the accounts made here and those the console adds: xmpp.js derives
    // SCRAM keys with one awaited WebCrypto HMAC an iteration (340 ms at 4,096 on a quiet machine),
    // and on a loaded one a login outlasted the test farm's 5 s auth_timeout.
    farm = await Farm.create({ consoleAdmins: ["root@localhost"], c2s: { scram_iterations: 64 } });
    await farm.start();
    await farm.addAccounts({ "root@localhost": "root-pw", "bob@localhost": "bob-pw", "alice@localhost": "alice-pw", "u1@localhost": "pw", "u2@localhost": "pw", "u3@localhost": "pw" }, 64);
    base = `http://127.0.0.1:${farm.consolePort}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("dialog", (d) => void d.accept());
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await browser?.close();
    await farm?.stop();
    farm?.cleanup();
  });

  it("answers nothing but the login page without a login", async () => {
    expect((await fetch(`${base}/api/state`)).status).toBe(401);
    expect((await fetch(`${base}/api/accounts`)).status).toBe(401);
    expect((await fetch(`${base}/console.js`)).status).toBe(401);
    expect((await fetch(`${base}/api/drain`, { method: "POST", body: '{"name":"c2s-1"}' })).status).toBe(401);
    const root = await fetch(`${base}/`, { redirect: "manual" });
    expect(root.status).toBe(303);
    expect(root.headers.get("location")).toBe("/login");
    expect((await fetch(`${base}/login`)).status).toBe(200);
  });

  it("refuses a wrong password and an account that is not an admin", async () => {
    await logIn("root@localhost", "wrong");
    await seeText("#message", /Wrong JID or password/);
    await shot("login-refused");
    await logIn("bob@localhost", "bob-pw");
    await seeText("#message", /Wrong JID or password/);
    expect(new URL(page.url()).pathname).toBe("/login");
  });

  it("throttles failed logins from an address and on an account", async () => {
    // From another loopback address, so that the browser's logins from 127.0.0.1 are not held back.
    const attempt = (jid: string, password: string) =>
      new Promise<number>((resolve, reject) => {
        const body = new URLSearchParams({ jid, password }).toString();
        const req = http.request(`${base}/login`, { method: "POST", localAddress: "127.0.0.2", headers: { "content-type": "application/x-www-form-urlencoded" } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on("error", reject);
        req.end(body);
      });
    for (let i = 0; i < 5; i++) expect(await attempt("u1@localhost", "guess")).toBe(401);
    // u1 is no admin: refused either way, now without a check.
    expect(await attempt("u1@localhost", "pw")).toBe(429);
    // The address is held back for every account, the right password of an admin included.
    expect(await attempt("root@localhost", "root-pw")).toBe(429);
  });

  it("refuses a POST without the session's CSRF token, or from another origin", async () => {
    const login = await fetch(`${base}/login`, { method: "POST", body: "jid=root%40localhost&password=root-pw", headers: { "content-type": "application/x-www-form-urlencoded" }, redirect: "manual" });
    expect(login.status).toBe(303);
    const setCookie = login.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(";")[0]!;
    const state = (await (await fetch(`${base}/api/state`, { headers: { cookie } })).json()) as { csrf: string };
    const drain = (headers: Record<string, string>) => fetch(`${base}/api/drain`, { method: "POST", headers: { cookie, ...headers }, body: '{"name":"c2s-1"}' });
    expect((await drain({})).status).toBe(403);
    expect((await drain({ "x-csrf-token": "0".repeat(64) })).status).toBe(403);
    expect((await drain({ "x-csrf-token": state.csrf, origin: "http://evil.example" })).status).toBe(403);
    // Nothing was drained by those.
    expect(c2s(await farm.status(), "c2s-1")!.info.draining).toBeFalsy();
  });

  it("lists the farm after a login, and its sessions as clients log in", async () => {
    await logIn("root@localhost", "root-pw");
    await seen("#row-sm-1");
    await seen("#row-c2s-1");
    await seen("#row-c2s-2");
    // The charts' data, as the page gets it. Rates come from two samples (every 5 s): the logins below
    // are charted only if a sample came before them.
    type History = { t: number[]; sessions: number[]; logins: number[]; messages: number[] };
    const history = () => page.evaluate(async () => ((await (await fetch("/api/state")).json()) as { history: History }).history);
    await farm.until("sampled", history, (h) => h.t.length > 0);
    const ports = farm.c2sPorts.map((p) => p.port);
    for (const u of ["u1", "u2", "u3"]) clients.push(await listXmppjs({ ports, username: u, password: "pw", follow: true }));
    const entries = await farm.untilStatus((es) => es.filter((e) => e.role === "c2s").reduce((n, e) => n + (e.load?.sessions ?? 0), 0) === 3);
    // The page shows what the router reports.
    for (const name of ["c2s-1", "c2s-2"]) {
      await seeText(`#row-${name} .sessions`, String(c2s(entries, name)!.load!.sessions));
    }
    for (const chart of ["sessions", "logins", "messages"]) await seen(`#chart-${chart} canvas`);
    // A message from u1 to u2, for the messages chart.
    await clients[0]!.xmpp.send(xml("message", { to: "u2@localhost", type: "chat", id: "charted" }, xml("body", {}, "hello")));
    // The router's samples count the three sessions, their logins and the message.
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    await farm.until("charted", history, (h) => h.sessions.at(-1) === 3 && sum(h.logins) > 0 && sum(h.messages) > 0);
    // Drawn now rather than at the page's next poll, for the screenshot.
    await page.evaluate("refresh()");
    await shot("farm");
  });

  it("drains a front end with a click: its clients move to the other; undrain puts it back", async () => {
    await page.click("#drain-c2s-1");
    const drained = await farm.untilStatus((es) => c2s(es, "c2s-1")!.load?.connections === 0 && c2s(es, "c2s-2")!.load?.sessions === 3, 30_000);
    expect(c2s(drained, "c2s-1")!.info.draining).toBe(true);
    await seeText("#row-c2s-1 .state", "drained");
    await shot("drained");
    await page.click("#undrain-c2s-1");
    await farm.untilStatus((es) => !c2s(es, "c2s-1")!.info.draining);
    await seeText("#row-c2s-1 .state", "active");
  });

  it("kicks a user and sends an announcement that online clients get", async () => {
    let alice: TestClient | null = await connectClient({ port: farm.c2sPorts[0]!.port, username: "alice", password: "alice-pw" });
    const bob = await connectClient({ port: farm.c2sPorts[1]!.port, username: "bob", password: "bob-pw" });
    try {
      await page.fill("#announce textarea", "maintenance at 18:00");
      await page.click("#announce button");
      for (const c of [alice, bob]) {
        const m = await c.next((el) => el.is("message") && el.attrs.type === "headline");
        expect(m.attrs.from).toBe("localhost");
        expect(m.getChildText("body")).toBe("maintenance at 18:00");
      }
      const ended = new Promise<string>((resolve) => alice!.xmpp.on("error", (err: { condition?: string }) => resolve(err.condition ?? String(err))));
      await page.fill("#kick input", "alice@localhost");
      await page.click("#kick button");
      expect(await ended).toBe("not-authorized");
      await alice.stop();
      alice = null;
      // Kicked, not deleted: she logs in again.
      expect(await loginFails("alice", "alice-pw")).toBeNull();
      await seeText("#notice", /Kick: done/);
    } finally {
      await alice?.stop();
      await bob.stop();
    }
  });

  it("adds, disables, enables and deletes accounts, as logging in as them shows", async () => {
    await page.fill("#account-add input[name=user]", "carol@localhost");
    await page.fill("#account-add input[name=password]", "carol-pw");
    await page.click("#account-add button");
    const carolRow = '[id="account-carol@localhost"]';
    const row = page.locator(carolRow);
    await seen(carolRow);
    expect(await loginFails("carol", "carol-pw")).toBeNull();

    const carol = await connectClient({ port: farm.c2sPorts[0]!.port, username: "carol", password: "carol-pw" });
    const ended = new Promise<void>((resolve) => carol.xmpp.on("disconnect", () => resolve()));
    await row.locator("button[data-action=disable]").click();
    await seeText(`${carolRow} .state`, "disabled");
    await ended; // her session ended
    await carol.stop();
    expect(await loginFails("carol", "carol-pw")).toBe("account-disabled");
    await shot("accounts");

    await row.locator("button[data-action=enable]").click();
    await seeText(`${carolRow} .state`, "enabled");
    expect(await loginFails("carol", "carol-pw")).toBeNull();

    await row.locator("button[data-action=delete]").click();
    await row.waitFor({ state: "detached", timeout: 15_000 });
    expect(await farm.readStore((s) => s.accountExists("carol@localhost"))).toBe(false);
    expect(await loginFails("carol", "carol-pw")).toBe("not-authorized");
  });
});

suite("the admin consoles of a router pair", () => {
  let farm: Farm;
  afterAll(async () => {
    await farm?.stop();
    farm?.cleanup();
  });

  it("serves one on each router, the passive one's refusing the controls", async () => {
    farm = await Farm.create({ routerCount: 2, consoleAdmins: ["root@localhost"] });
    await farm.start();
    await farm.addAccounts({ "root@localhost": "root-pw" });
    const states = await Promise.all(
      [farm.consolePort, farm.consolePort + 1].map(async (port) => {
        const base = `http://127.0.0.1:${port}`;
        const login = await fetch(`${base}/login`, { method: "POST", body: "jid=root%40localhost&password=root-pw", headers: { "content-type": "application/x-www-form-urlencoded" }, redirect: "manual" });
        expect(login.status).toBe(303);
        const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
        const state = (await (await fetch(`${base}/api/state`, { headers: { cookie } })).json()) as { router: string; active: boolean; csrf: string };
        const drain = await fetch(`${base}/api/drain`, { method: "POST", headers: { cookie, "x-csrf-token": state.csrf }, body: '{"name":"c2s-9"}' });
        return { ...state, drain: (await drain.json()) as { ok: boolean; error?: string } };
      }),
    );
    expect(states.map((s) => s.router)).toEqual(["router-1", "router-2"]);
    expect(states.filter((s) => s.active)).toHaveLength(1);
    const passive = states.find((s) => !s.active)!;
    expect(passive.drain).toEqual({ ok: false, error: "this router is passive; ask the active one" });
    // The active one acts: it names what is wrong with the order itself.
    expect(states.find((s) => s.active)!.drain).toEqual({ ok: false, error: 'no front end named "c2s-9" is linked' });
  });
});
