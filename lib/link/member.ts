// What every linked process knows about the others (docs/protocol.md §1.3).
import { createHash } from "node:crypto";

export type Role = "c2s" | "sm";
/** Who may link: farm processes, and short-lived admin tools (`xfarm status`). */
export type LinkRole = Role | "admin" | "router";

export interface C2sInfo {
  host: string;
  port: number;
  tlsPort: number;
}

export interface Member {
  /** A component's name; for an external (XEP-0114) component, its domain. */
  name: string;
  role: Role | "component";
  info: Record<string, unknown>;
}

/** The role address that reaches the sm owning a key (protocol §1.4). */
export const SM_ADDRESS = "sm";

/**
 * Rendezvous hashing: the sm with the highest score for a key owns it, so
 * when an sm joins or leaves only the keys it wins or held move.
 */
export function rendezvousOwner(names: readonly string[], key: string): string | undefined {
  // A lone sm owns every key; the hash is a tenth of the router's CPU per frame.
  if (names.length === 1) return names[0];
  let best: string | undefined;
  let bestScore = -1n;
  for (const name of names) {
    const score = createHash("sha256").update(`${name}\n${key}`).digest().readBigUInt64BE(0);
    if (score > bestScore || (score === bestScore && best !== undefined && name < best)) {
      best = name;
      bestScore = score;
    }
  }
  return best;
}

/** The sending side of a link, as the sm and c2s use it. */
export interface RoutePort {
  /** This process's component name, the `from` of every frame it sends. */
  readonly name: string;
  /**
   * Sends a ROUTE frame; `to` is a component name or the role address "sm".
   * False when the frame would exceed link.max_frame: it was not sent.
   */
  send(to: string, key: string, payload: Buffer): boolean;
  /** The live sm that owns a key, by the member table; undefined when none is linked. */
  smOwnerOf(key: string): string | undefined;
}
