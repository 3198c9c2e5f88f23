// The admin web console (docs/console.md): an HTTP server in the router,
// `[console] host`/`port`. Nothing but the login page and its stylesheet is
// served without a login; every POST needs the session's CSRF token in a
// header and, from a browser, an Origin of this host.
import fs from "node:fs";
import http from "node:http";
import type net from "node:net";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { servedAccount, type Config } from "../../lib/config.js";
import { parseJid } from "../../lib/jid.js";
import { DEFAULT_DRAIN_RATE, type StatusEntry } from "../../lib/link/control.js";
import type { Logger } from "../../lib/log.js";
import { listenFailure } from "../../lib/process-lifecycle.js";
import { deriveCredentials } from "../../lib/sasl/scram-credentials.js";
import type { Store } from "../../xdb-sql/store.js";
import type { AdminResult } from "../../lib/link/control.js";
import type { Router } from "../router.js";
import { ConsoleHistory, SAMPLE_MS } from "./console-history.js";
import { ConsoleSessions, type ConsoleSession } from "./console-sessions.js";

export interface ConsoleOptions {
  config: Config;
  /** What the console reads of the router (whether it is active) and orders it to do. */
  router: Pick<Router, "active" | "drain" | "undrain" | "kick" | "announce" | "deleteUser">;
  /** The rows of `xfarm status`, as the router builds them. */
  entries: () => StatusEntry[];
  store: Store;
  log: Logger;
}

const COOKIE = "xfarm_console";
const CSRF_HEADER = "x-csrf-token";
/** The most a request body may hold: a form or an announcement. */
const MAX_BODY = 64 * 1024;
/** Accounts the console lists at most. */
const MAX_LISTED = 500;

const STATIC = fileURLToPath(new URL("../../../router/console/static/", import.meta.url));
const require = createRequire(import.meta.url);

interface Asset {
  type: string;
  body: Buffer;
  /** Served without a login: the login page's own. */
  open?: boolean;
}

function assets(): Map<string, Asset> {
  const file = (name: string) => fs.readFileSync(STATIC + name);
  return new Map<string, Asset>([
    ["/console.css", { type: "text/css; charset=utf-8", body: file("console.css"), open: true }],
    ["/", { type: "text/html; charset=utf-8", body: file("console.html") }],
    ["/console.js", { type: "text/javascript; charset=utf-8", body: file("console.js") }],
    ["/uplot.js", { type: "text/javascript; charset=utf-8", body: fs.readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js")) }],
    ["/uplot.css", { type: "text/css; charset=utf-8", body: fs.readFileSync(require.resolve("uplot/dist/uPlot.min.css")) }],
  ]);
}

const HEADERS = {
  "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "Cache-Control": "no-store",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ConsoleServer {
  private readonly server: http.Server;
  private readonly sessions: ConsoleSessions;
  private readonly history = new ConsoleHistory();
  private readonly files = assets();
  private readonly loginPage = fs.readFileSync(STATIC + "login.html", "utf8");
  private sampler: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ConsoleOptions) {
    const admins = new Set(opts.config.console.admins.map((a) => parseJid(a)?.bare ?? a));
    this.sessions = new ConsoleSessions(opts.store, admins, opts.config.c2s.scram_iterations);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) opts.log.error({ err }, "console request failed");
        if (!res.headersSent) this.json(res, status, { ok: false, error: status === 500 ? "internal error" : (err as Error).message });
        else res.end();
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  async listen(): Promise<net.AddressInfo> {
    const { host, port } = this.opts.config.console;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", (err) => reject(listenFailure("console.port", port, err)));
      this.server.listen(port, host, () => resolve());
    });
    this.sampler = setInterval(() => this.history.sample(this.opts.entries()), SAMPLE_MS);
    this.sampler.unref();
    const address = this.server.address() as net.AddressInfo;
    this.opts.log.info({ address: address.address, port: address.port, admins: this.opts.config.console.admins.length }, "admin console listening");
    if (this.opts.config.console.admins.length === 0) this.opts.log.warn("no [console] admins: nobody can log in to the admin console");
    return address;
  }

  async close(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://console").pathname;
    const id = cookie(req.headers.cookie, COOKIE);
    if (req.method === "GET" && path === "/login") return this.page(res, 200, "");
    if (req.method === "POST" && path === "/login") return this.login(req, res);
    const asset = this.files.get(path);
    if (req.method === "GET" && asset?.open) return this.send(res, 200, asset.type, asset.body);
    const session = this.sessions.get(id);
    if (!session) {
      // A page goes to the login form; anything else is refused outright.
      if (req.method === "GET" && path === "/") return this.redirect(res, "/login");
      return this.json(res, 401, { ok: false, error: "log in first" });
    }
    if (req.method === "GET") {
      if (asset) return this.send(res, 200, asset.type, asset.body);
      if (path === "/api/state") return this.json(res, 200, this.state(session));
      if (path === "/api/accounts") return this.json(res, 200, await this.accounts());
      return this.json(res, 404, { ok: false, error: "not found" });
    }
    if (req.method !== "POST") return this.json(res, 405, { ok: false, error: "method not allowed" });
    this.checkOrigin(req);
    if (!ConsoleSessions.csrfMatches(session, header(req, CSRF_HEADER))) return this.json(res, 403, { ok: false, error: "missing or wrong CSRF token" });
    if (path === "/logout") {
      this.sessions.end(id!);
      res.setHeader("Set-Cookie", `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
      return this.json(res, 200, { ok: true });
    }
    const body = jsonObject(await readBody(req));
    const result = await this.act(path, body, session);
    return this.json(res, result.ok ? 200 : 400, result);
  }

  /** A POST from a browser says where its page came from: only this host's page may post. */
  private checkOrigin(req: http.IncomingMessage): void {
    const origin = header(req, "origin");
    if (origin === undefined) return;
    const host = header(req, "host");
    if (!host || (origin !== `http://${host}` && origin !== `https://${host}`)) throw new HttpError(403, "cross-origin request refused");
  }

  private async login(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.checkOrigin(req);
    const form = new URLSearchParams((await readBody(req)).toString("utf8"));
    const jid = form.get("jid") ?? "";
    const outcome = await this.sessions.login(jid, form.get("password") ?? "", req.socket.remoteAddress ?? "");
    if (!outcome.ok) {
      this.opts.log.warn({ user: jid.slice(0, 100), address: req.socket.remoteAddress, throttled: outcome.throttled }, "console login refused");
      return this.page(res, outcome.throttled ? 429 : 401, outcome.throttled ? "Too many failed logins: try again later." : "Wrong JID or password, or not an admin.");
    }
    this.opts.log.info({ user: outcome.session.user, address: req.socket.remoteAddress }, "console login");
    // No Max-Age: the cookie lasts the browser's session, and the router ends the login itself (SESSION_IDLE_MS, SESSION_MAX_MS).
    res.setHeader("Set-Cookie", `${COOKIE}=${outcome.id}; HttpOnly; SameSite=Strict; Path=/`);
    return this.redirect(res, "/");
  }

  private state(session: ConsoleSession) {
    return {
      user: session.user,
      csrf: session.csrf,
      router: this.opts.config.router.name,
      active: this.opts.router.active,
      domains: this.opts.config.domains,
      entries: this.opts.entries(),
      history: this.history.get(),
      sampleMs: SAMPLE_MS,
    };
  }

  private async accounts() {
    const [all, disabled] = await Promise.all([this.opts.store.listAccounts(), this.opts.store.listDisabledAccounts()]);
    const off = new Set(disabled);
    return { total: all.length, accounts: all.slice(0, MAX_LISTED).map((jid) => ({ jid, disabled: off.has(jid) })) };
  }

  /** Carries out a control's order; what it answers goes to the page as it is. */
  private async act(path: string, body: Record<string, unknown>, session: ConsoleSession): Promise<AdminResult> {
    const farm = this.opts.router;
    const log = this.opts.log.child({ admin: session.user });
    const str = (key: string): string => {
      const v = body[key];
      if (typeof v !== "string" || v === "") throw new HttpError(400, `"${key}" is required`);
      return v;
    };
    let result: AdminResult;
    switch (path) {
      case "/api/drain": {
        const rate = body.rate === undefined ? DEFAULT_DRAIN_RATE : Number(body.rate);
        if (!Number.isSafeInteger(rate) || rate < 1) throw new HttpError(400, "the rate is a whole number from 1");
        result = farm.drain(str("name"), rate);
        break;
      }
      case "/api/undrain":
        result = farm.undrain(str("name"));
        break;
      case "/api/kick":
        result = farm.kick(this.account(str("user")));
        break;
      case "/api/announce":
        result = farm.announce(str("body"));
        break;
      case "/api/account-add":
        result = await this.addAccount(this.account(str("user")), str("password"));
        break;
      case "/api/account-delete":
        result = await this.deleteAccount(this.account(str("user")));
        break;
      case "/api/account-disable":
      case "/api/account-enable":
        result = await this.setDisabled(this.account(str("user")), path === "/api/account-disable");
        break;
      default:
        throw new HttpError(404, "not found");
    }
    log.info({ action: path.slice("/api/".length), ...pick(body, ["name", "user", "rate"]), ok: result.ok, error: result.error }, "console action");
    return result;
  }

  /** A bare JID of a served domain, in its RFC 7622 form. */
  private account(text: string): string {
    try {
      return servedAccount(this.opts.config, text.trim());
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  }

  private async addAccount(user: string, password: string): Promise<AdminResult> {
    let creds;
    try {
      creds = await deriveCredentials(password, this.opts.config.c2s.scram_iterations);
    } catch (err) {
      return { ok: false, error: `unusable password: ${(err as Error).message}` };
    }
    return (await this.opts.store.createAccount(user, creds)) ? { ok: true } : { ok: false, error: `${user} already exists` };
  }

  /** As `xfarm user del` on a running farm: the sms end its sessions and tell its contacts, and the owner deletes it. */
  private async deleteAccount(user: string): Promise<AdminResult> {
    if (!(await this.opts.store.accountExists(user))) return { ok: false, error: `${user} does not exist` };
    const r = await new Promise<AdminResult>((resolve) => this.opts.router.deleteUser(user, resolve));
    // With no sm linked there are no sessions to end: the account goes from the store here, as the CLI does.
    if (!r.ok && r.error === "no session manager is linked") return (await this.opts.store.deleteAccount(user)) ? { ok: true } : { ok: false, error: `${user} does not exist` };
    return r;
  }

  /** Disabled, the account may not log in and its sessions end; enabled, it may log in again. */
  private async setDisabled(user: string, disabled: boolean): Promise<AdminResult> {
    if (!(await this.opts.store.setAccountDisabled(user, disabled))) return { ok: false, error: `${user} does not exist` };
    if (!disabled) return { ok: true };
    const kicked = this.opts.router.kick(user);
    return kicked.ok ? kicked : { ok: true, error: `disabled; its sessions were not ended: ${kicked.error}` };
  }

  private page(res: http.ServerResponse, status: number, message: string): void {
    const html = this.loginPage.replace("{{message}}", escapeHtml(message));
    this.send(res, status, "text/html; charset=utf-8", Buffer.from(html));
  }

  private redirect(res: http.ServerResponse, to: string): void {
    res.writeHead(303, { ...HEADERS, Location: to });
    res.end();
  }

  private json(res: http.ServerResponse, status: number, value: unknown): void {
    this.send(res, status, "application/json", Buffer.from(JSON.stringify(value)));
  }

  private send(res: http.ServerResponse, status: number, type: string, body: Buffer): void {
    res.writeHead(status, { ...HEADERS, "Content-Type": type, "Content-Length": body.length });
    res.end(body);
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function cookie(text: string | undefined, name: string): string | undefined {
  for (const part of (text ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, "request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function jsonObject(body: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString("utf8"));
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new HttpError(400, "the body must be a JSON object");
}

function pick(body: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => Object.hasOwn(body, k)).map((k) => [k, body[k]]));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
