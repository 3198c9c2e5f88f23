// Connections, logins and TLS under hostile clients (issue 13: H5, M2, M3,
// L2's SASL half, the TLS rows), on one real farm with small limits, from
// several loopback source addresses. Each test reads the farm processes'
// PIDs and memory before and after: none may restart.
import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { C2sLoad } from "../lib/link/control.js";
import { Farm } from "./harness/farm.js";
import { processStats, survivors, type ProcessStat } from "./harness/processes.js";
import { HEADER, RawStream, secureStream } from "./harness/raw-stream.js";

const PROCESSES = ["c2s-1", "sm-1", "router-1"];
/** Memory a process may grow by in one test, in KiB: generous, for a bound, not a measurement. */
const MAX_GROWTH_KB = 64 * 1024;
const MAX_CONNECTIONS = 12;
const PER_ADDRESS = 3;
const HANDSHAKE_S = 5;
/** The throttle's delay (first and longest), long beside a login on a busy machine. */
const DELAY_S = 10;

const plainAuth = (user: string, pw: string) =>
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString("base64")}</auth>`;
const SUCCESS = /<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/;
const failures = (s: RawStream) => s.received.match(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>.*?<\/failure>/g) ?? [];

/** A direct-TLS handshake from `localAddress`: the socket once secure, or null when the server cut it first. */
function tlsConnect(port: number, localAddress: string, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket | null> {
  return new Promise((resolve) => {
    const raw = net.connect({ host: "127.0.0.1", port, localAddress });
    const socket = tls.connect({ socket: raw, servername: "localhost", ...options }, () => resolve(socket));
    socket.on("error", () => resolve(null));
    socket.on("close", () => resolve(null));
  });
}

/** Logs in with PLAIN over STARTTLS from `localAddress`; resolves with the stream after <success/>. */
async function login(port: number, localAddress: string, user: string, password: string): Promise<RawStream> {
  const s = await secureStream(port, localAddress);
  s.send(plainAuth(user, password));
  await s.until(SUCCESS);
  return s;
}

describe("hostile connections, logins and TLS", () => {
  let farm: Farm;
  let port: number;
  let tlsPort: number;
  let before: Record<string, ProcessStat>;
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), "xfarm-hostile-tls-"));
  const certFile = path.join(certDir, "c2s.crt");
  const keyFile = path.join(certDir, "c2s.key");

  /** What c2s-1 last reported to the router (xfarm status --json). */
  async function load(): Promise<C2sLoad> {
    const entries = await farm.status();
    return entries.find((e) => e.name === "c2s-1")?.load ?? { sessions: 0, connections: 0, lag: 0 };
  }

  beforeAll(async () => {
    // A certificate of this farm's own, for the reload test to replace.
    fs.copyFileSync(process.env.XFARM_TEST_CERT!, certFile);
    fs.copyFileSync(process.env.XFARM_TEST_KEY!, keyFile);
    farm = await Farm.create({
      c2sCount: 1,
      tls: { cert: certFile, key: keyFile },
      c2s: {
        max_connections: MAX_CONNECTIONS,
        max_unauthenticated_per_address: PER_ADDRESS,
        // Long beside opening a dozen sockets (milliseconds), even on a busy machine: they must all be held when the next one comes.
        tls_handshake_timeout: HANDSHAKE_S,
        auth_timeout: 60,
        auth_free_failures: 2,
        auth_delay: DELAY_S,
        auth_max_delay: DELAY_S,
      },
    });
    await farm.start();
    await Promise.all(["owner", "bystander", "alice"].map((u) => farm.addUser(`${u}@localhost`, `${u}-pw`)));
    port = farm.c2sPorts[0]!.port;
    tlsPort = farm.c2sPorts[0]!.tlsPort;
  });

  afterAll(async () => {
    await farm.stop();
    farm.cleanup();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  const start = () => (before = processStats(farm, PROCESSES));
  const noneRestarted = () => {
    const grown = survivors(farm, before);
    for (const kb of Object.values(grown)) expect(kb).toBeLessThan(MAX_GROWTH_KB);
  };

  it("counts a socket in its TLS handshake toward max_connections, and closes it at the handshake deadline", async () => {
    await expect.poll(async () => (await load()).connections, { timeout: 20_000, interval: 500 }).toBe(0);
    start();
    // Sockets to the direct-TLS port that never say a word, from four addresses, up to the limit.
    const halfOpen: RawStream[] = [];
    for (let a = 1; a <= MAX_CONNECTIONS / PER_ADDRESS; a++) {
      for (let i = 0; i < PER_ADDRESS; i++) halfOpen.push(await RawStream.connect(tlsPort, `127.0.1.${a}`));
    }
    // One listener accepts in order: the next client, from a fifth address, finds the server full.
    expect(await tlsConnect(tlsPort, "127.0.1.9")).toBeNull();
    // On the STARTTLS port, it is told why.
    const refused = await RawStream.connect(port, "127.0.1.9");
    expect(await refused.untilClosed()).toMatch(/<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    // The handshake deadline closes every one of them, and then there is room again.
    for (const s of halfOpen) await s.untilClosed((HANDSHAKE_S + 20) * 1000);
    // A client sees the close before the front end has counted it: wait for the count it reports.
    await expect.poll(async () => (await load()).connections, { timeout: 20_000, interval: 500 }).toBe(0);
    const after = await tlsConnect(tlsPort, "127.0.1.9");
    expect(after).not.toBeNull();
    after!.destroy();
    noneRestarted();
  }, 60_000);

  it("caps the connections of one address that have not authenticated, while another address logs in", async () => {
    start();
    const pending: RawStream[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) pending.push(await RawStream.connect(tlsPort, "127.0.2.1"));
    expect(await tlsConnect(tlsPort, "127.0.2.1")).toBeNull();
    const refused = await RawStream.connect(port, "127.0.2.1");
    expect(await refused.untilClosed()).toMatch(/<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    const other = await login(port, "127.0.2.2", "alice", "alice-pw");
    // A client that authenticated leaves the count: its address may open more.
    const again = await login(port, "127.0.2.2", "alice", "alice-pw");
    for (const s of [other, again, ...pending]) s.destroy();
    noneRestarted();
  });

  it("slows a password guesser, and not the account's owner nor anyone elsewhere; a delay is not a refusal", async () => {
    start();
    // The owner logged in from home before the attack.
    (await login(port, "127.0.3.9", "owner", "owner-pw")).destroy();
    const guesser = await secureStream(port, "127.0.3.1");
    for (const guess of ["guess-1", "guess-2"]) {
      guesser.send(plainAuth("owner", guess));
      await expect.poll(() => failures(guesser).length).toBe(guess === "guess-1" ? 1 : 2);
    }
    // The free failures are spent: the third guess is held.
    guesser.send(plainAuth("owner", "guess-3"));
    await expect.poll(async () => (await load()).delayedLogins, { timeout: 20_000, interval: 500 }).toBe(1);
    // Meanwhile the owner from home and another user elsewhere log in at once.
    const home = await login(port, "127.0.3.9", "owner", "owner-pw");
    const elsewhere = await login(port, "127.0.3.2", "bystander", "bystander-pw");
    expect(failures(guesser)).toHaveLength(2);
    // The owner from a new address is delayed (the account is under attack), then let in.
    const travelling = await secureStream(port, "127.0.3.3");
    travelling.send(plainAuth("owner", "owner-pw"));
    await travelling.until(SUCCESS, (DELAY_S + 10) * 1000);
    // The guess is answered as any wrong password, after its delay.
    await guesser.until(/(<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>.*?<\/failure>.*?){3}/, (DELAY_S + 10) * 1000);
    expect(failures(guesser)[2]).toBe("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    for (const s of [guesser, home, elsewhere, travelling]) s.destroy();
    noneRestarted();
  }, 60_000);

  it("tells a failed login the SASL condition alone, with no internal text", async () => {
    start();
    const s = await secureStream(port, "127.0.5.1");
    // One NUL only: the log says "PLAIN needs exactly two NULs", the client only that it was malformed.
    s.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from("alice\0alice-pw").toString("base64")}</auth>`);
    await s.until(/<\/failure>/);
    s.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>not base64!</auth>");
    await expect.poll(() => failures(s).length).toBe(2);
    expect(failures(s)).toEqual([
      "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><malformed-request/></failure>",
      "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><incorrect-encoding/></failure>",
    ]);
    s.destroy();
    noneRestarted();
  });

  it("offers no CBC, CCM8 or ARIA suite in TLS 1.2, on either port; ECDHE with an AEAD cipher works", async () => {
    start();
    for (const ciphers of ["AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "AES128-CCM8", "ARIA128-GCM-SHA256:ECDHE-ARIA128-GCM-SHA256"]) {
      expect(await tlsConnect(tlsPort, "127.0.6.1", { ciphers, maxVersion: "TLSv1.2" }), ciphers).toBeNull();
    }
    // STARTTLS: the same context.
    const s = await RawStream.connect(port, "127.0.6.1");
    s.send(HEADER());
    await s.until(/<\/stream:features>/);
    s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await s.until(/<proceed/);
    await expect(s.startTls({ ciphers: "AES128-SHA", maxVersion: "TLSv1.2" })).rejects.toThrow();
    const good = await tlsConnect(tlsPort, "127.0.6.1", { maxVersion: "TLSv1.2" });
    expect(good!.getCipher().name).toMatch(/^ECDHE-RSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    good!.destroy();
    noneRestarted();
  });

  it("takes a new certificate on SIGHUP for new connections, while an open one stays up", async () => {
    start();
    const old = await login(port, "127.0.7.1", "alice", "alice-pw");
    old.send(HEADER());
    await old.until(/<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'\/>/);
    old.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await old.until(/<jid>alice@localhost\/[^<]+<\/jid>/);

    const pems = await generate([{ name: "commonName", value: "localhost" }], { keyType: "ec", curve: "P-256", algorithm: "sha256" } as Parameters<typeof generate>[1]);
    const renewed = new X509Certificate(pems.cert).fingerprint256;
    fs.writeFileSync(keyFile, pems.private);
    fs.writeFileSync(certFile, pems.cert);
    process.kill(farm.pid!, "SIGHUP");

    const presented = async (p: number, starttls: boolean) => {
      if (!starttls) {
        const socket = await tlsConnect(p, "127.0.7.2", { rejectUnauthorized: false });
        const fingerprint = socket?.getPeerX509Certificate()?.fingerprint256;
        socket?.destroy();
        return fingerprint;
      }
      const s = await RawStream.connect(p, "127.0.7.2");
      s.send(HEADER());
      await s.until(/<\/stream:features>/);
      s.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      await s.until(/<proceed/);
      const socket = await s.startTls({ rejectUnauthorized: false });
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      s.destroy();
      return fingerprint;
    };
    await expect.poll(() => presented(tlsPort, false), { timeout: 20_000, interval: 250 }).toBe(renewed);
    expect(await presented(port, true)).toBe(renewed);
    // The connection made before the reload goes on, on its old certificate.
    old.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await old.until(/id=["']p1["']/);
    old.destroy();
    noneRestarted();
  });
});
