// Who may connect: at most c2s.max_connections sockets in all, and at most
// c2s.max_unauthenticated_per_address connections not yet authenticated from
// one address (its addressKey; 0: no such limit). Refusals are counted and logged once a
// minute, never a line each: a flood must not become a flood of log lines.
import type { Logger } from "../lib/log.js";

/** The stream error a refused client gets (RFC 6120 §4.9.3). */
export type Refusal = "resource-constraint" | "policy-violation";

const REPORT_MS = 60_000;
/** Addresses named in a refusal report at most; more are counted only. */
const REPORTED_ADDRESSES = 5;
/** Addresses whose refusals are counted one by one within a report period. */
const COUNTED_ADDRESSES = 1_000;

export class ConnectionGate {
  /** Connections not yet authenticated, by address; an address leaves the map at zero. */
  private readonly unauthenticated = new Map<string, number>();
  private refusals = { total: 0, full: 0, perAddress: 0 };
  private byAddress = new Map<string, number>();
  private reportAt: number;

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerAddress: number,
    private readonly log: Logger,
    now = Date.now(),
  ) {
    this.reportAt = now + REPORT_MS;
  }

  /** Why a new connection from `address` is refused, or null: then it counts as not authenticated until leave(). */
  enter(address: string, sockets: number): Refusal | null {
    const count = this.unauthenticated.get(address) ?? 0;
    const perAddressFull = this.maxPerAddress > 0 && count >= this.maxPerAddress;
    const refusal = sockets >= this.maxConnections ? "resource-constraint" : perAddressFull ? "policy-violation" : null;
    if (refusal) {
      this.refused(address, refusal);
      return refusal;
    }
    this.unauthenticated.set(address, count + 1);
    return null;
  }

  /** A connection counted by enter() authenticated or closed. */
  leave(address: string): void {
    const count = (this.unauthenticated.get(address) ?? 0) - 1;
    if (count > 0) this.unauthenticated.set(address, count);
    else this.unauthenticated.delete(address);
  }

  /** The c2s sweep: logs the last period's refusals, if any. */
  report(now: number): void {
    if (now < this.reportAt) return;
    this.reportAt = now + REPORT_MS;
    if (this.refusals.total === 0) return;
    const top = [...this.byAddress].sort((a, b) => b[1] - a[1]).slice(0, REPORTED_ADDRESSES);
    this.log.warn(
      {
        refused: this.refusals.total,
        serverFull: this.refusals.full,
        perAddress: this.refusals.perAddress,
        addresses: Object.fromEntries(top),
        limits: { max_connections: this.maxConnections, max_unauthenticated_per_address: this.maxPerAddress },
      },
      "connections refused in the last minute",
    );
    this.refusals = { total: 0, full: 0, perAddress: 0 };
    this.byAddress = new Map();
  }

  private refused(address: string, refusal: Refusal): void {
    this.refusals.total++;
    if (refusal === "resource-constraint") this.refusals.full++;
    else this.refusals.perAddress++;
    const seen = this.byAddress.get(address);
    if (seen !== undefined || this.byAddress.size < COUNTED_ADDRESSES) this.byAddress.set(address, (seen ?? 0) + 1);
  }
}
