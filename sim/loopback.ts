// The simulator only ever talks to this machine: every target and source
// address must be loopback (127.0.0.0/8, ::1, or the name localhost, taken
// as 127.0.0.1). This file checks addresses, expands source ranges, and
// parses the host:port a <see-other-host/> names.
import net from "node:net";

/** Why `host` is refused as a target, or null when it is a loopback address. */
export function loopbackRefusal(host: string): string | null {
  const h = stripBrackets(host);
  if (h === "localhost" || isLoopbackIp(h)) return null;
  return `${host} is not a loopback address: xfarm sim drives servers on this machine only (127.0.0.0/8, ::1, localhost)`;
}

/** The address to connect to: localhost as 127.0.0.1, IPv6 without brackets. */
export function connectHost(host: string): string {
  const h = stripBrackets(host);
  return h === "localhost" ? "127.0.0.1" : h;
}

export function isLoopbackIp(ip: string): boolean {
  if (net.isIPv4(ip)) return ip.startsWith("127.");
  if (net.isIPv6(ip)) return ip === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(ip) || /^::ffff:127\./i.test(ip);
  return false;
}

function stripBrackets(h: string): string {
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Source addresses at most: each is a bound socket's address, not a thing to enumerate without end. */
const MAX_SOURCES = 4096;

/**
 * Expands source address specs — "127.0.0.2", "127.0.0.2-127.0.0.9",
 * "127.0.1.0/28", "::1" — into a list, refusing anything not loopback.
 */
export function expandSources(specs: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of specs) {
    const spec = raw.trim();
    let range: [number, number] | null = null;
    const dash = /^([\d.]+)\s*-\s*([\d.]+)$/.exec(spec);
    const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(spec);
    if (dash) {
      if (!net.isIPv4(dash[1]!) || !net.isIPv4(dash[2]!)) throw new Error(`source range "${spec}" is not two IPv4 addresses`);
      range = [ipv4ToInt(dash[1]!), ipv4ToInt(dash[2]!)];
    } else if (cidr) {
      const bits = Number(cidr[2]);
      if (!net.isIPv4(cidr[1]!) || bits < 8 || bits > 32) throw new Error(`source block "${spec}" is not an IPv4 CIDR block of /8 to /32`);
      const size = 2 ** (32 - bits);
      const start = Math.floor(ipv4ToInt(cidr[1]!) / size) * size;
      range = [start, start + size - 1];
    }
    if (range) {
      const [a, b] = range;
      if (b < a) throw new Error(`source range "${spec}" ends before it starts`);
      if (b - a + 1 + out.length > MAX_SOURCES) throw new Error(`more than ${MAX_SOURCES} source addresses`);
      for (let n = a; n <= b; n++) {
        const ip = intToIpv4(n >>> 0);
        if (!isLoopbackIp(ip)) throw new Error(`source address ${ip} (from "${spec}") is not in 127.0.0.0/8`);
        out.push(ip);
      }
      continue;
    }
    const ip = stripBrackets(spec);
    if (!net.isIP(ip)) throw new Error(`source "${spec}" is not an IP address, a range a-b, or a CIDR block`);
    if (!isLoopbackIp(ip)) throw new Error(`source address ${spec} is not a loopback address (127.0.0.0/8 or ::1)`);
    out.push(ip);
  }
  if (out.length > MAX_SOURCES) throw new Error(`more than ${MAX_SOURCES} source addresses`);
  return out;
}

/**
 * The host and port a <see-other-host/> names (RFC 6120 §4.9.3.19):
 * "host", "host:port", "[v6]" or "[v6]:port"; the port defaults to the one
 * the client was using. Null when it cannot be read.
 */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | null {
  const t = text.trim();
  if (!t) return null;
  let host: string;
  let portText: string | undefined;
  if (t.startsWith("[")) {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
    if (!m) return null;
    host = m[1]!;
    portText = m[2];
  } else if (net.isIPv6(t)) {
    host = t;
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(t);
    if (!m) return null;
    host = m[1]!;
    portText = m[2];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port };
}

/** host:port as a redirect counter's key, IPv6 in brackets. */
export function hostPortKey(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
