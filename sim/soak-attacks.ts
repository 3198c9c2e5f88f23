// The hostile clients of the soak (sim/soak.ts): one entry per attack that
// issue 13 found a farm open to (its rows H1–H5, M1–M5), and a client over
// its rate and plain garbage. Each is bounded in connections, bytes and
// time, and ends with how the farm answered it: the stream error it named,
// the stanza or error it sent back, or a close. docs/security.md lists them.
import { createHash } from "node:crypto";
import { attr, firstChild } from "./xml-scan.js";
import { NS_COMPONENT, streamHeader, type Element, type SoakConn } from "./soak-conn.js";

/** Which loopback addresses an attack comes from: every group is its own, apart from the honest clients'. */
export type AddressGroup = "login" | "junk" | "crowd" | "guess";

/** What the attacks aim at, and the farm's limits they are measured against. */
export interface SoakTargets {
  c2s: { port: number; tlsPort: number }[];
  componentPort: number;
  /** Component domains configured in [components], with their secrets. */
  components: { domain: string; secret: string }[];
  domain: string;
  /** The attackers' own accounts (one password for all). */
  attackers: string[];
  attackerPassword: string;
  /**
   * Accounts the offline floods fill, in turn: the first never logs in, so
   * its floods bounce once it is full; the others read their backlogs.
   */
  victims: string[];
  /** Honest accounts the password guessers try; their owners log in meanwhile (sim/soak.ts). */
  guessed: string[];
  /** An account with an open PEP node of large items, and the node. */
  gallery: { user: string; node: string };
  /** An account whose roster is larger than a link frame. */
  popular: string;
  limits: {
    authTimeout: number;
    authMaxDelay: number;
    authDelay: number;
    tlsHandshakeTimeout: number;
    maxUnauthenticatedPerAddress: number;
    rateBurst: number;
    rateCutoff: number;
  };
}

export interface Outcome {
  /** How the farm answered, in words that add up over many attacks of a kind. */
  outcome: string;
  /** Figures summed over the kind (messages bounced, guesses held back, …). */
  counts?: Record<string, number>;
}

/** One attack being made: where from, and its connections (the scheduler ends them all when it is over). */
export interface AttackRun {
  readonly t: SoakTargets;
  readonly address: string;
  /** Which attack of the soak this is (0, 1, …). */
  readonly seq: number;
  /** Which attack of its kind this is (0, 1, …). */
  readonly nth: number;
  /** The attackers' account this one uses: they take turns over the whole soak, so no account holds many sessions. */
  readonly attacker: string;
  /** Which of its kind's parallel places it holds (0 … parallel − 1). */
  readonly slot: number;
  connect(port: number): Promise<SoakConn>;
  /** The element of `list` for this attack of its kind: each kind goes through a list in turn. */
  pick<T>(list: readonly T[]): T;
  /** A stream on the front end, through STARTTLS, its features read. */
  secure(): Promise<SoakConn>;
  /** Logs in as `user` (PLAIN over STARTTLS) and binds, on the front end. */
  login(user: string, password?: string): Promise<{ conn: SoakConn; jid: string }>;
  /** The front end: each kind takes them in turn. */
  readonly c2s: { port: number; tlsPort: number };
}

export interface AttackKind {
  name: string;
  /** Issue 13's row. */
  row: string;
  what: string;
  group: AddressGroup;
  /** How many of this kind may run at once. */
  parallel: number;
  /** Seconds it may take before the scheduler ends it. */
  seconds(t: SoakTargets): number;
  run(a: AttackRun): Promise<Outcome>;
}

/** How long an answer the farm owes at once may take on a loaded two-core box. */
export const ANSWER_MS = 15_000;
const CHUNK = 65_536;

function* repeat<T>(x: T, n: number): Generator<T> {
  for (let i = 0; i < n; i++) yield x;
}

function* chunks(text: string): Generator<string> {
  for (let i = 0; i < text.length; i += CHUNK) yield text.slice(i, i + CHUNK);
}

const nested = (depth: number, attrs: string) => `<message ${attrs}>${"<a>".repeat(depth)}${"</a>".repeat(depth)}</message>`;

/** Waits for the farm to end the stream; how it did, or that it did not within ANSWER_MS. */
async function ended(c: SoakConn): Promise<Outcome> {
  await c.closedWithin(ANSWER_MS);
  return { outcome: c.ending };
}

const isIq = (id: string) => (e: Element) => e.name === "iq" && attr(e.xml, "id") === id;
const stanzaError = (xml: string) => firstChild(xml.slice(xml.indexOf("<error")), [])?.name ?? "unknown";
const otherAttacker = (a: AttackRun) => a.t.attackers[(a.t.attackers.indexOf(a.attacker) + 1) % a.t.attackers.length]!;

/** A component's stream and handshake with `secret`; the connection once the router answered. */
async function componentHandshake(a: AttackRun, domain: string, secret: string): Promise<{ conn: SoakConn; accepted: boolean }> {
  const c = await a.connect(a.t.componentPort);
  c.send(`<stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`);
  await c.streamOpened(ANSWER_MS);
  const id = c.headerAttr("id") ?? "";
  c.send(`<handshake>${createHash("sha1").update(id + secret).digest("hex")}</handshake>`);
  try {
    const e = await c.next((x) => x.name === "handshake" || x.name === "error", ANSWER_MS);
    return { conn: c, accepted: e.name === "handshake" };
  } catch {
    return { conn: c, accepted: false };
  }
}

const GARBAGE: { name: string; bytes: () => (string | Buffer)[] }[] = [
  { name: "binary junk", bytes: () => [Buffer.from(Array.from({ length: 16_384 }, (_, i) => (i * 7919 + 13) & 0xff))] },
  { name: "mismatched tags", bytes: () => [streamHeader(), "<message><body>x</message></body>"] },
  { name: "invalid UTF-8", bytes: () => [streamHeader(), Buffer.from([0x3c, 0x6d, 0xff, 0xfe, 0xc0, 0x80, 0x3e])] },
  { name: "an HTTP request", bytes: () => ["GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"] },
];

export const ATTACKS: readonly AttackKind[] = [
  {
    name: "h1-endless-tag",
    row: "H1",
    what: "before login, an opening tag whose attribute value never ends (1 MiB sent at most)",
    group: "junk",
    parallel: 2,
    seconds: () => 30,
    async run(a) {
      const c = await a.connect(a.c2s.port);
      await c.pour([streamHeader(), "<message to='", ...repeat("x".repeat(CHUNK), 16)]);
      return ended(c);
    },
  },
  {
    name: "h1-many-attributes",
    row: "H1",
    what: "before login, a stream header with 20,000 attributes",
    group: "junk",
    parallel: 2,
    seconds: () => 30,
    async run(a) {
      const c = await a.connect(a.c2s.port);
      const head = streamHeader().slice(0, -"version='1.0'>".length);
      const attrs = Array.from({ length: 20 }, (_, k) => Array.from({ length: 1000 }, (_, i) => ` a${k * 1000 + i}='1'`).join(""));
      await c.pour([head, ...attrs]);
      return ended(c);
    },
  },
  {
    name: "h2-deep-nesting",
    row: "H2",
    what: "before login, <a> × 80,000 (240 KB)",
    group: "junk",
    parallel: 2,
    seconds: () => 30,
    async run(a) {
      const c = await a.connect(a.c2s.port);
      await c.pour([streamHeader(), ...chunks("<a>".repeat(80_000))]);
      return ended(c);
    },
  },
  {
    name: "h3-deep-message",
    row: "H3",
    what: "logged in, a message nested 5,000 deep",
    group: "login",
    parallel: 2,
    seconds: () => 60,
    async run(a) {
      const { conn } = await a.login(a.attacker);
      conn.send(nested(5_000, `to='${otherAttacker(a)}@${a.t.domain}' type='chat'`));
      return ended(conn);
    },
  },
  {
    name: "h3-deep-component",
    row: "H3",
    what: "an XEP-0114 component (right secret) sends a message nested 5,000 deep",
    group: "junk",
    parallel: 2,
    seconds: () => 60,
    async run(a) {
      const { domain, secret } = a.t.components[a.slot % a.t.components.length]!;
      // The router may not have seen the previous one of this slot go yet: try again a moment later.
      for (let attempt = 0; ; attempt++) {
        const { conn, accepted } = await componentHandshake(a, domain, secret);
        if (!accepted) {
          if (conn.streamError === "conflict" && attempt < 5) {
            conn.destroy();
            await new Promise((r) => setTimeout(r, 500));
            continue;
          }
          return { outcome: `handshake refused: ${conn.ending}` };
        }
        conn.send(nested(5_000, `from='${domain}' to='${a.t.attackers[0]}@${a.t.domain}'`));
        return ended(conn);
      }
    },
  },
  {
    name: "h4-pep-items",
    row: "H4",
    what: "logged in, asks for every item of another user's open PEP node of 6 × 200 KB",
    group: "login",
    parallel: 2,
    seconds: () => 60,
    async run(a) {
      const { conn } = await a.login(a.attacker);
      const g = a.t.gallery;
      conn.send(`<iq type='get' id='items' to='${g.user}@${a.t.domain}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='${g.node}'/></pubsub></iq>`);
      const e = await conn.next(isIq("items"), ANSWER_MS);
      if (attr(e.xml, "type") !== "result") return { outcome: `error ${stanzaError(e.xml)}` };
      const items = (e.xml.match(/<item\b/g) ?? []).length;
      const count = /<count>(\d+)<\/count>/.exec(e.xml)?.[1];
      return { outcome: `result: ${items} items${count ? ` of ${count}, paged` : ", whole"}` };
    },
  },
  {
    name: "h4-big-roster",
    row: "H4",
    what: "logged in, fetches its own roster of 12,000 contacts",
    group: "login",
    parallel: 1,
    seconds: () => 60,
    async run(a) {
      const { conn } = await a.login(a.t.popular);
      conn.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>");
      const e = await conn.next(isIq("roster"), ANSWER_MS);
      if (attr(e.xml, "type") !== "result") return { outcome: `error ${stanzaError(e.xml)}` };
      return { outcome: `result: ${(e.xml.match(/<item\b/g) ?? []).length} items` };
    },
  },
  {
    name: "h5-half-open-tls",
    row: "H5",
    what: "five sockets to the direct-TLS port that never start the handshake",
    group: "junk",
    parallel: 1,
    seconds: (t) => t.limits.tlsHandshakeTimeout + 30,
    async run(a) {
      const deadline = a.t.limits.tlsHandshakeTimeout;
      const conns: SoakConn[] = [];
      for (let i = 0; i < 5; i++) conns.push(await a.connect(a.c2s.tlsPort));
      const closed = await Promise.all(conns.map((c) => c.closedWithin((deadline + 20) * 1000)));
      const held = conns.map((c) => (c.closedAt - c.openedAt) / 1000);
      if (closed.some((x) => !x)) return { outcome: `${closed.filter((x) => !x).length} of 5 still open after ${deadline + 20} s` };
      // Each socket counts from its own accept: a few hundred ms either side of the deadline.
      const atDeadline = held.every((s) => s >= deadline - 1 && s <= deadline + 5);
      return { outcome: atDeadline ? `all closed by the farm at the handshake deadline (${deadline} s)` : `closed after ${Math.min(...held).toFixed(1)}–${Math.max(...held).toFixed(1)} s` };
    },
  },
  {
    name: "m1-quotes",
    row: "M1",
    what: "logged in, a 220 KB message of quote characters (body and attribute) to itself",
    group: "login",
    parallel: 1,
    seconds: () => 60,
    async run(a) {
      const { conn, jid } = await a.login(a.attacker);
      const body = '"'.repeat(200_000);
      conn.send(`<message to='${jid}' id='quotes' title='${'"'.repeat(20_000)}'><body>${body}</body></message>`);
      const e = await conn.next((x) => x.name === "message" && attr(x.xml, "id") === "quotes", ANSWER_MS);
      if (attr(e.xml, "type") === "error") return { outcome: `bounced: ${stanzaError(e.xml)}` };
      return { outcome: e.xml.includes(`<body>${body}</body>`) ? "delivered whole" : "delivered, altered" };
    },
  },
  {
    name: "m1-huge-tag",
    row: "M1",
    what: "logged in, a message whose opening tag is 2 MB",
    group: "login",
    parallel: 2,
    seconds: () => 60,
    async run(a) {
      const { conn } = await a.login(a.attacker);
      await conn.pour([`<message to='${otherAttacker(a)}@${a.t.domain}' title='`, ...repeat("y".repeat(CHUNK), 32)]);
      return ended(conn);
    },
  },
  {
    name: "m2-crowd",
    row: "M2",
    what: "3 × c2s.max_unauthenticated_per_address connections from one address, none logging in",
    group: "crowd",
    parallel: 2,
    seconds: () => 45,
    async run(a) {
      const n = 3 * a.t.limits.maxUnauthenticatedPerAddress;
      const conns: SoakConn[] = [];
      for (let i = 0; i < n; i++) {
        const c = await a.connect(a.c2s.port);
        c.send(streamHeader());
        conns.push(c);
      }
      const answers = await Promise.all(conns.map((c) => c.next((e) => e.name === "features" || e.name === "error", ANSWER_MS).then((e) => e.name, () => "none")));
      const served = answers.filter((x) => x === "features").length;
      const refused = conns.filter((c) => c.streamError === "policy-violation").length;
      const limit = a.t.limits.maxUnauthenticatedPerAddress;
      const outcome =
        served <= limit && served + refused === n ? `at most ${limit} served, the rest refused with policy-violation` : `${served} served, ${refused} refused with policy-violation, ${n - served - refused} otherwise`;
      return { outcome, counts: { served, refused } };
    },
  },
  {
    name: "m3-guess",
    row: "M3",
    what: "three wrong PLAIN passwords for an honest account, on one stream",
    group: "guess",
    parallel: 3,
    seconds: (t) => 3 * (t.limits.authMaxDelay + 5) + 30,
    async run(a) {
      const user = a.pick(a.t.guessed);
      const c = await a.secure();
      const answers: string[] = [];
      let held = 0;
      try {
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0guess-${a.seq}-${i}`).toString("base64")}</auth>`);
          const e = await c.next((x) => x.name === "failure" || x.name === "success", (a.t.limits.authMaxDelay + 5) * 1000 + ANSWER_MS);
          if (e.name === "success") return { outcome: "a guess was let in" };
          answers.push(firstChild(e.xml)?.name ?? "unknown");
          // The throttle holds an attempt at least c2s.auth_delay; a wrong password alone costs milliseconds.
          if (performance.now() - t0 >= (a.t.limits.authDelay * 1000) / 2) held++;
        }
        await c.closedWithin(ANSWER_MS);
      } catch {
        // The farm ended the stream while a guess was held (c2s.auth_timeout): the ending says so.
      }
      const answered = answers.length ? [...new Set(answers)].join(", ") + (held ? ", held back by the login throttle" : ", answered at once") : "no guess answered";
      return { outcome: `${answered}, then ${c.ending}`, counts: { guesses: answers.length, "held back": held } };
    },
  },
  {
    name: "m4-offline-flood",
    row: "M4",
    what: "logged in, 20 messages of 10 KB to an offline victim",
    group: "login",
    parallel: 2,
    seconds: () => 60,
    async run(a) {
      const { conn } = await a.login(a.attacker);
      const victim = `${a.pick(a.t.victims)}@${a.t.domain}`;
      const body = "v".repeat(10_000);
      for (let i = 0; i < 20; i++) conn.send(`<message to='${victim}' id='f${i}' type='chat'><body>${body}</body></message>`);
      // The sm handles one account's stanzas in order: the answer to this comes after every bounce.
      conn.send(`<iq type='get' id='barrier' to='${victim}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      const bounces = new Map<string, number>();
      for (;;) {
        const e = await conn.next((x) => isIq("barrier")(x) || (x.name === "message" && attr(x.xml, "type") === "error"), ANSWER_MS);
        if (e.name === "iq") break;
        const cond = stanzaError(e.xml);
        bounces.set(cond, (bounces.get(cond) ?? 0) + 1);
      }
      const bounced = [...bounces.values()].reduce((s, x) => s + x, 0);
      const outcome = bounced ? `bounced over quota: ${[...bounces.keys()].join(", ")}` : "all taken (stored, or delivered to the victim online)";
      return { outcome, counts: { taken: 20 - bounced, bounced } };
    },
  },
  {
    name: "m4-victim-reads",
    row: "M4",
    what: "the victim logs in and reads its offline backlog",
    group: "login",
    parallel: 1,
    seconds: () => 90,
    async run(a) {
      const readers = a.t.victims.slice(1);
      const { conn } = await a.login(a.pick(readers));
      conn.send("<presence/>");
      let delayed = 0;
      let live = 0;
      // The backlog comes in paced batches: read until the farm has been quiet for 3 s, a minute at most.
      const until = performance.now() + 60_000;
      while (performance.now() < until) {
        const e = await conn.next((x) => x.name === "message", 3_000).catch(() => null);
        if (!e) break;
        if (e.xml.includes("urn:xmpp:delay")) delayed++;
        else live++;
      }
      conn.send("</stream:stream>");
      return { outcome: "read its backlog", counts: { "offline read": delayed, "live read": live } };
    },
  },
  {
    name: "m5-proto-component",
    row: "M5",
    what: "an XEP-0114 component named __proto__ or constructor, with the secret a prototype lookup would give",
    group: "junk",
    parallel: 1,
    seconds: () => 45,
    async run(a) {
      const domain = a.pick(["__proto__", "constructor"]);
      const secret = String((({}) as Record<string, unknown>)[domain]);
      const { conn, accepted } = await componentHandshake(a, domain, secret);
      if (!accepted) return { outcome: `${domain}: ${conn.ending}` };
      // Let in: then H3 from there, as the issue found it.
      conn.send(nested(5_000, `from='${domain}' to='${a.t.attackers[0]}@${a.t.domain}'`));
      const { outcome } = await ended(conn);
      return { outcome: `${domain}: AUTHENTICATED, then ${outcome}` };
    },
  },
  {
    name: "rate-flood",
    row: "rate",
    what: "logged in, 1 KB messages as fast as the socket takes them, past c2s.rate_cutoff",
    group: "login",
    parallel: 2,
    seconds: (t) => t.limits.rateCutoff + t.limits.rateBurst + 45,
    async run(a) {
      const { conn } = await a.login(a.attacker);
      const t0 = performance.now();
      const limit = (a.t.limits.rateCutoff + a.t.limits.rateBurst + 30) * 1000;
      // Stop waiting for the socket to drain at the limit too: a slowed client's writes may block that long.
      let gaveUp = false;
      const timer = setTimeout(() => {
        gaveUp = true;
        conn.destroy();
      }, limit);
      const msg = (i: number) => `<message to='nobody@${a.t.domain}' id='r${i}' type='chat'><body>${"r".repeat(1000)}</body></message>`;
      const flood = function* () {
        for (let i = 0; performance.now() - t0 < limit; i++) yield msg(i);
      };
      const kb = Math.round((await conn.pour(flood())) / 1024);
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      if (conn.closed && !gaveUp) return { outcome: `cut off after ${Math.round(seconds / 10) * 10} s: ${conn.ending}`, counts: { "KB sent": kb } };
      return { outcome: `slowed, still connected after ${Math.round(seconds)} s`, counts: { "KB sent": kb } };
    },
  },
  {
    name: "garbage",
    row: "junk",
    what: "16 KB of binary junk, mismatched tags, invalid UTF-8, an HTTP request",
    group: "junk",
    parallel: 2,
    seconds: () => 30,
    async run(a) {
      const g = a.pick(GARBAGE);
      const c = await a.connect(a.c2s.port);
      await c.pour(g.bytes());
      const { outcome } = await ended(c);
      return { outcome: `${g.name}: ${outcome}` };
    },
  },
];
