// One config file (TOML) plus environment overrides. Every key is declared
// here once, with its type, default and documentation; the README's config
// reference and `xfarm config` are made from this table.
import fs from "node:fs";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { domainpart, parseJid } from "./jid.js";
import { MIN_IDLE_SECONDS } from "./idle-heap.js";
import { HEADER_ALLOWANCE } from "./link/frames.js";
import { LOG_FORMATS } from "./log.js";
import { MALLOC_CHOICES, type MallocChoice } from "./malloc.js";
import type { XmlLimits } from "./xml-stream.js";

export type KeyType = "string" | "integer" | "number" | "boolean" | "string[]";

export interface KeySpec {
  key: string;
  type: KeyType;
  default: string | number | boolean | string[];
  doc: string;
}

export const CONFIG_KEYS: readonly KeySpec[] = [
  { key: "domains", type: "string[]", default: ["localhost"], doc: "XMPP domains the farm serves." },
  { key: "data_dir", type: "string", default: "./data", doc: "Where the embedded database, generated certificates and generated link secrets live." },
  { key: "db", type: "string", default: "", doc: 'Database URL: "sqlite:PATH" (default: sqlite:<data_dir>/xfarm.db), or "mysql://USER:PASSWORD@HOST:PORT/DATABASE?pool=10" for MySQL/MariaDB.' },
  { key: "log_level", type: "string", default: "info", doc: "pino log level: fatal, error, warn, info, debug or trace." },
  { key: "log_format", type: "string", default: "auto", doc: 'How processes print their log lines: "json" (one JSON object a line, level by name, ISO time), "pretty" (readable, through pino-pretty), or "auto": pretty on a terminal, JSON otherwise.' },
  { key: "idle_gc", type: "integer", default: 10, doc: "Seconds a farm process's event loop must be idle (under 2 % busy) before it collects once to give back what a burst of traffic grew: the young generation (V8 keeps up to 32 MB of it otherwise) and, compacted, the old generation's pages of freed objects; 0: never, else at least 6 (V8 judges the allocation rate over its last 5 s)." },

  { key: "router.name", type: "string", default: "router-1", doc: "The router's name, sent in its HELLO." },
  { key: "router.host", type: "string", default: "127.0.0.1", doc: "Address the router listens on for component links." },
  { key: "router.port", type: "integer", default: 5390, doc: "Port the router listens on for component links." },
  { key: "router.addresses", type: "string[]", default: ["127.0.0.1:5390"], doc: 'Where components reach the router, "host:port" ("[v6]:port" for IPv6).' },
  { key: "router.peer", type: "string", default: "", doc: 'The other router of an active/passive pair, "host:port"; empty: this router is alone and active.' },
  { key: "router.election", type: "integer", default: 3, doc: "Seconds a passive router waits for an unreachable active peer before it takes over." },
  { key: "router.lease", type: "integer", default: 3, doc: "Seconds the active router of a pair holds its lease in the database (the `db` URL) unless it renews it, every third of that: only the holder routes, so a partition between the routers never makes both active." },
  { key: "router.component_host", type: "string", default: "127.0.0.1", doc: "Address the router listens on for XEP-0114 external components." },
  { key: "router.component_port", type: "integer", default: 5347, doc: "Port for XEP-0114 external components (their secrets: the [components] table); 0 disables it." },
  { key: "console.host", type: "string", default: "127.0.0.1", doc: "Address the router serves the admin web console on (docs/console.md); put it behind a TLS reverse proxy to reach it from elsewhere." },
  { key: "console.port", type: "integer", default: 5280, doc: "Port of the admin web console, served by the router (router-2 of a pair run by `xfarm start` on the next port); 0 turns it off. On, the router opens the database to check the admins' passwords." },
  { key: "console.admins", type: "string[]", default: [], doc: "Bare JIDs of the farm's accounts that may log in to the admin web console with their XMPP password; empty: nobody can." },
  {
    key: "link.high_water",
    type: "integer",
    default: 8388608,
    doc: "Bytes waiting to be written on a link over which its writer stops reading what feeds it until it drains: a c2s stops reading its clients, an sm the router, the router the links whose frames go there.",
  },
  { key: "link.max_frame", type: "integer", default: 1048576, doc: "Largest link frame in bytes; must exceed c2s.max_stanza_size, sm.max_pep_item_size and sm.max_private_item_size by 65536 bytes of headers." },
  { key: "link.max_auth_frame", type: "integer", default: 65536, doc: "Largest frame in bytes the router reads from a link that has not authenticated yet (an AUTH takes a few hundred); a bigger one closes that link." },

  { key: "sm.name", type: "string", default: "sm-1", doc: "This session manager's component name (its secret is secrets.<name>)." },
  { key: "sm.c2s_grace", type: "integer", default: 10, doc: "Seconds an sm keeps the sessions of a front end missing from the member table before ending them." },
  { key: "sm.max_sessions_per_user", type: "integer", default: 10, doc: "Most resources one account may have bound at once." },
  {
    key: "sm.max_roster_items",
    type: "integer",
    default: 5000,
    doc: "Most roster items one account keeps, pending subscription requests included; more are refused (policy-violation to the user, resource-constraint to a requesting contact).",
  },
  { key: "sm.max_private_size", type: "integer", default: 1048576, doc: "Most bytes of private XML (XEP-0049) one account stores; a set that would exceed it is refused with policy-violation." },
  { key: "sm.max_private_item_size", type: "integer", default: 131072, doc: "Largest private XML element in bytes; a bigger one is refused with not-acceptable." },
  { key: "sm.max_pep_nodes", type: "integer", default: 100, doc: "Most PEP nodes one account has; creating more is refused with policy-violation." },
  { key: "sm.max_pep_items", type: "integer", default: 256, doc: 'Most items one PEP node keeps, what pubsub#max_items "max" means (Prosody\'s pep_max_items); the oldest go first.' },
  { key: "sm.max_pep_item_size", type: "integer", default: 250000, doc: "Largest PEP item payload in bytes (ejabberd's max_payload_size); a bigger one is refused with not-acceptable and payload-too-big." },
  { key: "sm.max_directed_presences", type: "integer", default: 1000, doc: "Most JIDs one session may have sent directed available presence to; presence to one more is refused with policy-violation." },
  { key: "sm.max_user_queue", type: "integer", default: 10000, doc: "Most stanzas waiting in the sm for one account; more are refused with resource-constraint." },
  { key: "sm.max_user_queue_bytes", type: "integer", default: 16777216, doc: "Most bytes of stanzas waiting in the sm for one account; more are refused with resource-constraint." },
  { key: "sm.max_offline_messages", type: "integer", default: 100, doc: "Offline messages one account may hold (ejabberd's default); one more is bounced to its sender with service-unavailable (XEP-0160)." },
  { key: "sm.max_offline_bytes", type: "integer", default: 10485760, doc: "Bytes of offline messages one account may hold; a message that would go over is bounced to its sender with service-unavailable." },

  { key: "c2s.name", type: "string", default: "c2s-1", doc: "This front end's component name (its secret is secrets.<name>)." },
  { key: "c2s.host", type: "string", default: "*", doc: 'Address the c2s listens on for clients; "*" means every interface (IPv4 and IPv6).' },
  { key: "c2s.port", type: "integer", default: 5222, doc: "Client port with STARTTLS (RFC 6120)." },
  { key: "c2s.tls_port", type: "integer", default: 5223, doc: "Client port with direct TLS (XEP-0368); 0 disables it." },
  { key: "c2s.public_host", type: "string", default: "localhost", doc: "The host name clients use for this front end." },
  { key: "c2s.require_tls", type: "boolean", default: true, doc: "Refuse authentication until the stream is encrypted." },
  {
    key: "c2s.allow_unencrypted_plain_auth",
    type: "boolean",
    default: false,
    doc: "Offer SASL PLAIN on unencrypted streams too (with require_tls off), as Prosody's option of that name; for load tests on loopback, never in production.",
  },
  { key: "c2s.registration", type: "boolean", default: false, doc: "Let clients create accounts in-band (XEP-0077) before they authenticate, on the streams that offer PLAIN (encrypted ones, or any with allow_unencrypted_plain_auth); off, as Prosody's allow_registration." },
  { key: "c2s.registration_per_hour", type: "integer", default: 5, doc: "Accounts one client address (an IPv6 address by its /64) may register in-band in an hour, on each front end; more are refused with resource-constraint, as ejabberd does." },
  {
    key: "c2s.max_stanza_size",
    type: "integer",
    default: 262144,
    doc: "Largest stanza a client may send once authenticated (and an XEP-0114 component once it shook hands): in bytes as the farm passes it on (UTF-8, escaping included), and in characters as it arrives, whitespace before it included; a bigger one closes the stream with policy-violation.",
  },
  {
    key: "c2s.max_stanza_size_unauthenticated",
    type: "integer",
    default: 10240,
    doc: "The same limit before authentication (the stream header, STARTTLS, SASL; a component before its handshake), as Prosody's 10 KiB.",
  },
  { key: "c2s.rate_bytes", type: "integer", default: 16384, doc: "Bytes a second one client may send on average (Prosody's default is 10 kB/s); over it, its socket is read more slowly." },
  { key: "c2s.rate_stanzas", type: "integer", default: 50, doc: "Top-level elements (stanzas, SASL and XEP-0198 elements) a second one client may send on average; over it, its socket is read more slowly." },
  { key: "c2s.rate_burst", type: "integer", default: 16, doc: "Seconds of either rate a client may send at once before it is slowed (16 s of 16384 bytes: one c2s.max_stanza_size stanza)." },
  { key: "c2s.rate_cutoff", type: "integer", default: 60, doc: "Seconds a client may stay over its rate, slowed, before its stream ends with policy-violation; 0: never." },
  { key: "c2s.auth_timeout", type: "integer", default: 30, doc: "Seconds a client has to authenticate and bind before connection-timeout." },
  { key: "c2s.max_connections", type: "integer", default: 19000, doc: "Client sockets one c2s process holds, from accept on (TLS handshakes included); more are refused at accept." },
  {
    key: "c2s.max_unauthenticated_per_address",
    type: "integer",
    default: 10,
    doc: "Connections not yet authenticated from one address (IPv6: one /64) at once; more are refused at accept (policy-violation). 0: no limit, for a load test from one address.",
  },
  { key: "c2s.tls_handshake_timeout", type: "integer", default: 10, doc: "Seconds a client has to finish a TLS handshake (direct TLS or STARTTLS) before its socket is closed." },
  { key: "c2s.auth_free_failures", type: "integer", default: 5, doc: "Failed logins from one address, or on one account, before the next attempts are delayed." },
  { key: "c2s.auth_delay", type: "integer", default: 1, doc: "Seconds the first delayed login attempt waits; each further failure doubles it." },
  { key: "c2s.auth_max_delay", type: "integer", default: 16, doc: "Longest delay of a login attempt in seconds; keep it below c2s.auth_timeout." },
  { key: "c2s.auth_failure_memory", type: "integer", default: 900, doc: "Seconds after its last failed login that an address or account is forgiven." },
  { key: "c2s.auth_throttle_entries", type: "integer", default: 20000, doc: "Addresses, accounts and trusted logins each remembered at most by the login throttle; the oldest go first." },
  { key: "c2s.resume_timeout", type: "integer", default: 300, doc: "Seconds a dropped XEP-0198 session waits to be resumed (on its c2s, or in its sm if that c2s died, stopped, or was drained) before it ends and its unacknowledged stanzas go offline." },
  { key: "c2s.max_unacked_bytes", type: "integer", default: 8388608, doc: "Bytes of stanzas an XEP-0198 session may hold unacknowledged, attached or hibernating; more ends it with policy-violation and its messages are routed again." },
  { key: "c2s.max_pending_bytes", type: "integer", default: 262144, doc: "Bytes of a client's stanzas that the sm has not yet taken (docs/failover.md), e.g. while no sm is reachable; beyond them the client is not read until the sm takes some." },
  { key: "c2s.weight", type: "number", default: 1, doc: "This front end's share of clients relative to the others (2 takes twice as many as 1)." },
  { key: "c2s.capacity", type: "integer", default: 0, doc: "Sessions at which every new client is redirected elsewhere and the front end closes its client ports while another takes clients (full; open again under 90 %); 0: c2s.max_connections." },
  { key: "c2s.redirect_floor", type: "integer", default: 200, doc: "Sessions over its fair share a front end always keeps before redirecting new clients for balance (docs/redirection.md)." },
  { key: "c2s.redirect_margin", type: "number", default: 0.1, doc: "How far over its fair share a front end goes before redirecting new clients for balance (0.1 = 10 %), when that is more than c2s.redirect_floor." },
  { key: "c2s.redirect_memory", type: "integer", default: 120, doc: "Seconds a redirected client (by address and account) is remembered and served if it comes back." },
  { key: "c2s.max_lag", type: "integer", default: 500, doc: "Event-loop delay in ms (p99 over 2 s) over which a front end takes no redirected clients and sends its new ones to a peer that can take them; over it for two periods running, it closes its client ports while another takes clients (full)." },
  { key: "c2s.scram_iterations", type: "integer", default: 4096, doc: "PBKDF2 iterations for new SCRAM credentials (xfarm user add/passwd)." },
  { key: "c2s.tls_cert", type: "string", default: "", doc: "PEM certificate chain; empty: a self-signed one is generated under <data_dir>/tls on first start." },
  { key: "c2s.tls_key", type: "string", default: "", doc: "PEM private key for c2s.tls_cert." },

  { key: "xml.max_depth", type: "integer", default: 64, doc: "Elements nested in one stanza, the stanza itself counted, on every XML stream (clients, components); deeper closes the stream with policy-violation as the tag is read." },
  { key: "xml.max_attributes", type: "integer", default: 64, doc: "Attributes (namespace declarations included) on one element; more closes the stream with policy-violation." },
  { key: "xml.max_name_length", type: "integer", default: 256, doc: "Characters in an element's or attribute's name; longer closes the stream with policy-violation." },

  { key: "start.c2s_count", type: "integer", default: 2, doc: "How many c2s processes `xfarm start` runs." },
  { key: "start.router_count", type: "integer", default: 1, doc: "Routers `xfarm start` runs: 1, or 2 as an active/passive pair (router-1 and router-2 on router.port and the next port; its processes and the `xfarm` commands then reach both, and ask the active one)." },
  { key: "start.router_peers", type: "string[]", default: [], doc: "Where router-1 and router-2 of a pair run by `xfarm start` reach each other: two host:port addresses, router-1's peer first; empty: each other's port directly (the fault harness puts a proxy there to partition them)." },
  { key: "start.sm_count", type: "integer", default: 1, doc: "How many session managers `xfarm start` runs (sm-1, sm-2, …; users are spread over them)." },
  { key: "start.port_step", type: "integer", default: 100, doc: "Port offset between the c2s processes of `xfarm start` (5222, 5322, …)." },
  {
    key: "start.unready_restart_after",
    type: "integer",
    default: 60,
    doc: "Seconds a child of `xfarm start` may answer /readyz with 503 (or not at all) while the router is ready, before the supervisor restarts it; 0: never (docs/metrics.md). Not while the database is what it waits for: a restart would not bring it back.",
  },
  { key: "start.alert_webhook", type: "string", default: "", doc: "URL the supervisor POSTs a JSON alert to when it restarts a child, when one stays down, and when it gives up on one (docs/metrics.md); empty: none." },
  { key: "start.alert_down_after", type: "integer", default: 60, doc: "Seconds a child of `xfarm start` may be down (exited, or not ready) before the supervisor sends the `down` alert; 0: never." },
  {
    key: "start.malloc",
    type: "string",
    default: "auto",
    doc: 'The C allocator of the front ends (c2s) `xfarm start` runs: "jemalloc" (Debian\'s libjemalloc2, preloaded: a TLS client costs a quarter to a third less memory than with glibc\'s malloc, docs/bench.md), "system" (the C library\'s malloc), or "auto": jemalloc where it is installed, else the system\'s. Each process\'s xfarm_malloc_info says which it runs with.',
  },

  { key: "metrics.host", type: "string", default: "127.0.0.1", doc: "Address every process serves /metrics, /healthz and /readyz on (docs/metrics.md); keep it on loopback or a private network." },
  { key: "metrics.router_port", type: "integer", default: 9700, doc: "The router's metrics port (`xfarm start`: router-2 of a pair on the next); 0: none." },
  { key: "metrics.sm_port", type: "integer", default: 9710, doc: "The sm's metrics port (`xfarm start`: sm-N on this port + N - 1); 0: none." },
  { key: "metrics.c2s_port", type: "integer", default: 9720, doc: "The c2s's metrics port (`xfarm start`: c2s-N on this port + (N - 1) × start.port_step, as c2s.port); 0: none." },
];

export interface Config {
  domains: string[];
  data_dir: string;
  db: string;
  log_level: string;
  log_format: string;
  idle_gc: number;
  router: { name: string; host: string; port: number; addresses: string[]; peer: string; election: number; lease: number; component_host: string; component_port: number };
  console: { host: string; port: number; admins: string[] };
  link: { max_frame: number; max_auth_frame: number; high_water: number };
  sm: {
    name: string;
    max_sessions_per_user: number;
    c2s_grace: number;
    max_roster_items: number;
    max_private_size: number;
    max_private_item_size: number;
    max_pep_nodes: number;
    max_pep_items: number;
    max_pep_item_size: number;
    max_directed_presences: number;
    max_user_queue: number;
    max_user_queue_bytes: number;
    max_offline_messages: number;
    max_offline_bytes: number;
  };
  c2s: {
    name: string;
    host: string;
    port: number;
    tls_port: number;
    public_host: string;
    require_tls: boolean;
    allow_unencrypted_plain_auth: boolean;
    registration: boolean;
    registration_per_hour: number;
    max_stanza_size: number;
    max_stanza_size_unauthenticated: number;
    rate_bytes: number;
    rate_stanzas: number;
    rate_burst: number;
    rate_cutoff: number;
    auth_timeout: number;
    max_connections: number;
    max_unauthenticated_per_address: number;
    tls_handshake_timeout: number;
    auth_free_failures: number;
    auth_delay: number;
    auth_max_delay: number;
    auth_failure_memory: number;
    auth_throttle_entries: number;
    resume_timeout: number;
    max_unacked_bytes: number;
    max_pending_bytes: number;
    weight: number;
    capacity: number;
    redirect_floor: number;
    redirect_margin: number;
    redirect_memory: number;
    max_lag: number;
    scram_iterations: number;
    tls_cert: string;
    tls_key: string;
  };
  xml: { max_depth: number; max_attributes: number; max_name_length: number };
  start: {
    c2s_count: number;
    sm_count: number;
    router_count: number;
    router_peers: string[];
    port_step: number;
    unready_restart_after: number;
    alert_webhook: string;
    alert_down_after: number;
    malloc: MallocChoice;
  };
  metrics: { host: string; router_port: number; sm_port: number; c2s_port: number };
  /**
   * Link secrets by component name (the [secrets] table, then <data_dir>/secrets.toml).
   * Maps, not objects: a peer chooses the name looked up, and "constructor" must find nothing.
   */
  secrets: Map<string, string>;
  /** XEP-0114 component secrets by domain (the [components] table). */
  components: Map<string, string>;
  /**
   * The sm's modules' settings as written, for the sm to check against its
   * modules (lib knows none): the [sm.modules] table, and the XFARM_SM_MODULES_*
   * environment variables.
   */
  modules: ModuleSettings;
  /** The file this was read from, if any. */
  file: string | null;
}

export interface ModuleSettings {
  /** The [sm.modules] table: a table per module name, not checked here. */
  table: Record<string, unknown>;
  /** XFARM_SM_MODULES_* variables by name. */
  env: Record<string, string>;
}

/** What names the environment variables of the sm's modules' settings begin with. */
export const MODULE_ENV_PREFIX = "XFARM_SM_MODULES_";

export function envName(key: string): string {
  return `XFARM_${key.toUpperCase().replace(/\./g, "_")}`;
}

/** A value from a file or the environment (`where`) as its key's type; throws, naming the key, when it is not one. */
export function coerce(spec: KeySpec, value: unknown, where: string): unknown {
  const bad = () => new Error(`config ${spec.key} (${where}): expected ${spec.type}, got ${JSON.stringify(value)}`);
  switch (spec.type) {
    case "string":
      if (typeof value !== "string") throw bad();
      return value;
    case "integer": {
      const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isInteger(n)) throw bad();
      return n;
    }
    case "number": {
      const n = typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isFinite(n)) throw bad();
      return n;
    }
    case "boolean":
      if (value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      if (typeof value !== "boolean") throw bad();
      return value;
    case "string[]": {
      const list = typeof value === "string" ? value.split(",").map((s) => s.trim()).filter(Boolean) : value;
      if (!Array.isArray(list) || list.some((s) => typeof s !== "string")) throw bad();
      return list;
    }
  }
}

function getPath(obj: Record<string, unknown>, key: string): unknown {
  let cur: unknown = obj;
  for (const part of key.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split(".");
  let cur = obj;
  for (const part of parts.slice(0, -1)) cur = (cur[part] ??= {}) as Record<string, unknown>;
  cur[parts.at(-1)!] = value;
}

const KNOWN_TABLES = new Set(["router", "console", "link", "sm", "c2s", "xml", "start", "metrics", "secrets", "components"]);
/** Tables whose keys are names chosen by the admin, not config keys. */
const FREE_TABLES = new Set(["secrets", "components"]);

/** The limits an XML stream is parsed under (clients, components), with the given stanza size. */
export function xmlLimits(xml: Config["xml"], maxStanza: number): XmlLimits {
  return { maxStanza, maxDepth: xml.max_depth, maxAttributes: xml.max_attributes, maxNameLength: xml.max_name_length };
}

/** The documented default of every key, no file nor environment read (db, secrets and components left empty). */
export function configDefaults(): Config {
  const out: Record<string, unknown> = { secrets: {}, components: {}, modules: { table: {}, env: {} }, file: null };
  for (const spec of CONFIG_KEYS) setPath(out, spec.key, structuredClone(spec.default));
  return out as unknown as Config;
}

/** Reads the config: defaults, then the file (if any), then XFARM_* environment variables. */
export function loadConfig(file: string | null, env: NodeJS.ProcessEnv = process.env): Config {
  const out = configDefaults() as unknown as Record<string, unknown>;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    fromFile = parseToml(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
    const known = new Set(CONFIG_KEYS.map((s) => s.key));
    for (const [k, v] of Object.entries(fromFile)) {
      if (KNOWN_TABLES.has(k) && typeof v === "object") {
        if (FREE_TABLES.has(k)) continue;
        for (const sub of Object.keys(v as object)) {
          if (k === "sm" && sub === "modules") continue;
          if (!known.has(`${k}.${sub}`)) throw new Error(`${file}: unknown config key ${k}.${sub}`);
        }
      } else if (!known.has(k)) throw new Error(`${file}: unknown config key ${k}`);
    }
  }
  for (const spec of CONFIG_KEYS) {
    const v = getPath(fromFile, spec.key);
    if (v !== undefined) setPath(out, spec.key, coerce(spec, v, file!));
    const e = env[envName(spec.key)];
    if (e !== undefined) setPath(out, spec.key, coerce(spec, e, envName(spec.key)));
  }
  const config = out as unknown as Config;
  // As every JID is compared: in its RFC 7622 form.
  config.domains = config.domains.map((d) => {
    const domain = domainpart(d);
    if (domain === null) throw new Error(`domains: "${d}" is not a valid domain (RFC 7622)`);
    return domain;
  });
  config.file = file ? path.resolve(file) : null;
  if (!config.db) config.db = `sqlite:${path.join(config.data_dir, "xfarm.db")}`;
  config.secrets = new Map([...readSecretsFile(config.data_dir), ...secretTable(fromFile.secrets, `${file} [secrets]`)]);
  config.components = secretTable(fromFile.components, `${file} [components]`);
  config.modules = moduleSettings(fromFile, env, file);
  checkLimits(config);
  if (config.idle_gc !== 0 && config.idle_gc < MIN_IDLE_SECONDS) throw new Error(`config idle_gc must be 0 (never) or at least ${MIN_IDLE_SECONDS} seconds, got ${config.idle_gc}`);
  checkOneOf("start.malloc", config.start.malloc, MALLOC_CHOICES);
  checkOneOf("log_format", config.log_format, LOG_FORMATS);
  return config;
}

/** A string key that takes one of a few words. */
function checkOneOf(key: string, value: string, choices: readonly string[]): void {
  if (!choices.includes(value)) throw new Error(`config ${key}: expected one of ${choices.join(", ")}, got "${value}"`);
}

/** The [sm.modules] table (a table of tables, else an error) and the XFARM_SM_MODULES_* variables, unchecked. */
function moduleSettings(fromFile: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string | null): ModuleSettings {
  const table = getPath(fromFile, "sm.modules") ?? {};
  if (typeof table !== "object" || table === null || Array.isArray(table)) throw new Error(`${file}: sm.modules must be a table of tables, one per module`);
  const vars = Object.entries(env).filter((e): e is [string, string] => e[0].startsWith(MODULE_ENV_PREFIX) && e[1] !== undefined);
  return { table: table as Record<string, unknown>, env: Object.fromEntries(vars) };
}

/**
 * Limits that only make sense together. A stanza the farm accepts or a
 * single stored item it hands out must fit a link frame with its headers,
 * or the link would have to refuse it (docs/security.md).
 */
function checkLimits(c: Config): void {
  const limits = ["c2s.max_stanza_size", "sm.max_pep_item_size", "sm.max_private_item_size"] as const;
  const tree = c as unknown as Record<string, unknown>;
  for (const spec of CONFIG_KEYS) {
    if (spec.type === "integer" && (spec.key.startsWith("sm.max_") || spec.key === "link.max_frame" || spec.key === "router.lease") && (getPath(tree, spec.key) as number) < 1) {
      throw new Error(`config ${spec.key} must be at least 1`);
    }
  }
  for (const key of limits) {
    const size = getPath(tree, key) as number;
    if (c.link.max_frame < size + HEADER_ALLOWANCE) {
      throw new Error(`config link.max_frame (${c.link.max_frame}) must be at least ${key} (${size}) + ${HEADER_ALLOWANCE} bytes of headers`);
    }
  }
  if (c.sm.max_user_queue_bytes < c.link.max_frame) {
    throw new Error(`config sm.max_user_queue_bytes (${c.sm.max_user_queue_bytes}) must be at least link.max_frame (${c.link.max_frame})`);
  }
}

/**
 * A domain named on the command line, in its RFC 7622 form; throws when the
 * farm does not serve it: an empty answer for a typo or another farm's domain
 * would read as "no accounts".
 */
export function servedDomain(config: Config, text: string): string {
  const domain = domainpart(text) ?? text;
  if (!config.domains.includes(domain)) throw new Error(`${domain} is not served here (domains: ${config.domains.join(", ")})`);
  return domain;
}

/**
 * Where the farm's processes and tools reach the router: `router.addresses`,
 * or, for the router pair that `xfarm start` runs on one box
 * (`start.router_count = 2`), both of its ports.
 */
export function routerAddresses(config: Config): string[] {
  if (config.start.router_count < 2) return config.router.addresses;
  return [`127.0.0.1:${config.router.port}`, `127.0.0.1:${config.router.port + 1}`];
}

export function secretsFile(dataDir: string): string {
  return path.join(dataDir, "secrets.toml");
}

function readSecretsFile(dataDir: string): Map<string, string> {
  const f = secretsFile(dataDir);
  if (!fs.existsSync(f)) return new Map();
  return secretTable(parseToml(fs.readFileSync(f, "utf8")), f);
}

/** A table of secrets by name, its own entries only; every secret a non-empty string. */
function secretTable(table: unknown, where: string): Map<string, string> {
  if (table === undefined) return new Map();
  if (typeof table !== "object" || table === null) throw new Error(`${where}: expected a table of secrets`);
  const entries = Object.entries(table);
  for (const [name, secret] of entries) {
    if (typeof secret !== "string" || secret === "") throw new Error(`${where}: the secret of ${JSON.stringify(name)} must be a non-empty string`);
  }
  return new Map(entries as [string, string][]);
}

/**
 * The documented defaults as a TOML file, for `xfarm config` and the README;
 * `more`: keys declared elsewhere (the sm's modules' `sm.modules.NAME.KEY`).
 */
export function annotatedDefaults(more: readonly KeySpec[] = []): string {
  const lines: string[] = [];
  let table = "";
  for (const spec of [...CONFIG_KEYS, ...more]) {
    const dot = spec.key.lastIndexOf(".");
    const t = dot < 0 ? "" : spec.key.slice(0, dot);
    const name = dot < 0 ? spec.key : spec.key.slice(dot + 1);
    if (t !== table) {
      lines.push("", `[${t}]`);
      table = t;
    }
    lines.push(`# ${spec.doc} (env ${envName(spec.key)})`, `${name} = ${JSON.stringify(spec.default)}`);
  }
  lines.push("", "[components]", "# XEP-0114 external components: the shared secret of each component domain.", '# "muc.example.org" = "…"');
  lines.push("", "[secrets]", "# Link secret of each component, by name. `xfarm start` generates any missing one", "# into <data_dir>/secrets.toml; on a farm of many boxes, give every box the same table.", '# "c2s-1" = "…"');
  return lines.join("\n").trimStart() + "\n";
}

/** An account an admin names (CLI, console): a bare JID of a served domain, in its RFC 7622 form; throws, saying why, otherwise. */
export function servedAccount(config: Config, text: string): string {
  const j = parseJid(text);
  if (!j || !j.local || j.resource) throw new Error(`"${text}" is not a bare JID like alice@${config.domains[0]}`);
  servedDomain(config, j.domain);
  return j.bare;
}
