// Where `xfarm sim` connects unless told otherwise: the farm that the xfarm
// config describes (the c2s address, the ports of the front ends
// `xfarm start` runs, its first domain), so that it load-tests that farm and
// not whatever else listens on 5222.
import type { Config } from "../lib/config.js";
import type { Security } from "./scenario.js";
import type { SimFlags } from "./flags.js";

export interface ServerTarget {
  host: string;
  domain: string;
  /** The front ends' STARTTLS (or plain) ports, and their direct-TLS ports (none when c2s.tls_port is 0). */
  ports: number[];
  tlsPorts: number[];
}

export function configTarget(config: Config): ServerTarget {
  const { c2s, start } = config;
  const steps = Array.from({ length: Math.max(1, start.c2s_count) }, (_, i) => i * start.port_step);
  return {
    host: connectable(c2s.host),
    domain: config.domains[0] ?? "localhost",
    // As `xfarm start` numbers them (deploy/supervisor.ts): front end i listens start.port_step × i above.
    ports: steps.map((step) => c2s.port + step),
    tlsPorts: c2s.tls_port ? steps.map((step) => c2s.tls_port + step) : [],
  };
}

/**
 * The flags, with the target's host, ports and domain wherever neither the
 * command line nor the scenario file (`fileServerKeys`: the keys of its
 * [server] table) gives them; `security` is the run's.
 */
export function withTarget(flags: SimFlags, fileServerKeys: readonly string[], security: Security, target: ServerTarget): SimFlags {
  const given = (flag: keyof SimFlags, key: string) => flags[flag] !== undefined || fileServerKeys.includes(key);
  const out = { ...flags };
  if (!given("host", "host")) out.host = target.host;
  if (!given("domain", "domain")) out.domain = target.domain;
  if (!given("port", "port")) {
    const ports = security === "direct" ? target.tlsPorts : target.ports;
    if (ports.length === 0) throw new Error("the config's c2s.tls_port is 0 (no direct TLS port): give --port");
    out.port = ports.join(",");
  }
  return out;
}

/** A listening address a client on this machine can connect to: every interface is reached through loopback. */
function connectable(host: string): string {
  if (host === "*" || host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "::1";
  return host;
}
