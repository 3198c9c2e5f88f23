// The drained front ends and their rates (protocol §1.7), as the active
// router keeps them: here, not in the front end, so that one that restarts
// mid-drain is drained again as it links, and a takeover keeps them (the
// pair peer holds a copy, protocol §1.9).
import { DEFAULT_DRAIN_RATE } from "../lib/link/control.js";

/** What a front end that links is told, if anything: its drain goes on, or an undrain it missed. */
export type OnLink = { op: "drain"; rate: number; adopted: boolean } | { op: "undrain" } | null;

export class DrainedFronts {
  private fronts = new Map<string, number>();
  /** Front ends undrained while unlinked: one that re-links still draining is told to stop. */
  private readonly undrainOnLink = new Set<string>();

  /** Name → rate. */
  get all(): ReadonlyMap<string, number> {
    return this.fronts;
  }

  /** The set as the `drained` op carries it. */
  record(): Record<string, number> {
    return Object.fromEntries(this.fronts);
  }

  /** The active peer's set, which a passive router keeps for its turn. */
  replace(fronts: Record<string, number>): void {
    this.fronts = new Map(Object.entries(fronts));
  }

  /** Drains `name` at `rate`; false when it is neither linked nor drained already. */
  drain(name: string, rate: number, linked: boolean): boolean {
    if (!linked && !this.fronts.has(name)) return false;
    this.fronts.set(name, rate);
    this.undrainOnLink.delete(name);
    return true;
  }

  /** Undrains `name`; false when it is neither in the set nor draining. One not linked is told as it links. */
  undrain(name: string, linked: boolean, draining: boolean): boolean {
    if (!this.fronts.delete(name) && !draining) return false;
    if (!linked) this.undrainOnLink.add(name);
    return true;
  }

  /**
   * Front end `name` linked, `draining` at `drainRate` or not: undrained
   * while away, it is told so; in the set, it is drained again (it
   * restarted mid-drain); draining while not in the set, it was drained by
   * a router that restarted since, and is adopted.
   */
  linked(name: string, draining: boolean, drainRate: number | undefined): OnLink {
    const rate = this.fronts.get(name);
    if (this.undrainOnLink.delete(name) && draining) return { op: "undrain" };
    if (rate !== undefined) return { op: "drain", rate, adopted: false };
    if (!draining) return null;
    const adopted = drainRate ?? DEFAULT_DRAIN_RATE;
    this.fronts.set(name, adopted);
    return { op: "drain", rate: adopted, adopted: true };
  }
}
