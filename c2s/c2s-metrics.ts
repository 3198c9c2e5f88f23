// A front end's metrics (docs/metrics.md), read from what it keeps when
// scraped: its counters, its session and connection counts, its link.
import type { ProcessMetrics } from "../lib/metrics/process-metrics.js";
import type { C2sCounters } from "./c2s-counters.js";
import type { PlainVerifier } from "./sasl/plain-cache.js";

export interface C2sGauges {
  readonly sessions: number;
  readonly size: number;
  readonly sockets: number;
  readonly counters: C2sCounters;
  readonly plain: Pick<PlainVerifier, "vouchersHeld">;
}

export function c2sMetrics(m: ProcessMetrics, ctx: C2sGauges): void {
  const c = ctx.counters;
  m.gauge("xfarm_c2s_sessions", "Sessions served here: authenticated clients not sent elsewhere.", () => ctx.sessions);
  m.gauge("xfarm_c2s_connections", "Client connections, from accept on (TLS handshakes included).", () => ctx.size);
  m.gauge("xfarm_c2s_sockets", "Client sockets held: connections, and closed streams' sockets waiting for the peer's close.", () => ctx.sockets);
  m.counter("xfarm_c2s_connections_accepted_total", "Client sockets accepted (refused ones not counted).", () => c.accepted);
  m.counterBy("xfarm_c2s_logins_total", "Successful SASL logins, by mechanism.", "mechanism", () => c.logins);
  m.counterBy("xfarm_c2s_auth_failures_total", "Failed SASL attempts, by mechanism (other: one not offered; none: no <auth/> yet).", "mechanism", () => c.authFailures);
  m.gauge("xfarm_c2s_plain_vouchers", "PLAIN vouchers waiting for their clients: from peers that redirected them, and from the sm for a lost front end's.", () => ctx.plain.vouchersHeld());
  m.counterBy("xfarm_c2s_plain_checks_total", "SASL PLAIN passwords checked, by how: pbkdf2 and wrong each ran a PBKDF2, remembered and vouched did not.", "proof", () => c.plainChecks);
  m.counterBy("xfarm_c2s_stanzas_in_total", "Stanzas read from bound clients, by kind.", "kind", () => c.stanzasIn);
  m.counterBy("xfarm_c2s_stanzas_out_total", "Stanzas delivered to clients, by kind.", "kind", () => c.stanzasOut);
  m.counter("xfarm_c2s_received_bytes_total", "Bytes read from clients (inside TLS).", () => c.bytesIn);
  m.counter("xfarm_c2s_sent_bytes_total", "Bytes written to clients (inside TLS; a connection's closing stream error not counted).", () => c.bytesOut);
  m.counter("xfarm_c2s_redirects_sent_total", "Clients sent to another front end (balance, full, drain).", () => c.redirectsSent);
  m.counter("xfarm_c2s_redirects_followed_total", "Clients that logged in here because another front end sent them.", () => c.redirectsFollowed);
}
