// What every linked process knows about the others (docs/protocol.md §1.3).
import { createHash } from "node:crypto";
import { boolean, bytesAtMost, count, isObject, number, object, oneOf, optional, port, string, type Shape } from "./shape.js";

export type Role = "c2s" | "sm";
/** Who may link: farm processes, and short-lived admin tools (`xfarm status`). */
export type LinkRole = Role | "admin" | "router";

/** A front end's `info` (protocol §1.5): where clients reach it, and its share of them. */
export interface C2sInfo {
  host: string;
  port: number;
  tlsPort: number;
  weight: number;
  capacity: number;
  /** Ordered to drain (protocol §1.7): its listeners are closed and its clients moved off, drainRate a second. */
  draining?: boolean;
  drainRate?: number;
  /** At its capacity or over c2s.max_lag: its listeners are closed until it is back under its lower marks. */
  full?: boolean;
  /** It knows no linked sm (it started before one linked, or every sm left): its listeners are closed until one links. */
  noSm?: boolean;
  /** When the process started (ms since the epoch), for `xfarm status`. */
  started: number;
  /** It reads TAKEN, DELIVERED and CLIENT_ACKED in their flat form (protocol §1.5); an earlier version leaves it out. */
  flatAcks?: boolean;
}

/** An sm's `info` (protocol §1.5). */
export interface SmInfo {
  /** When the process started: a new value tells the others it restarted. */
  started: number;
  /** As C2sInfo's. */
  flatAcks?: boolean;
}

export const c2sInfoShape: Shape<C2sInfo> = object({
  host: string,
  port,
  tlsPort: port,
  weight: (v): v is number => number(v) && v >= 0,
  capacity: count,
  draining: optional(boolean),
  drainRate: optional(count),
  full: optional(boolean),
  noSm: optional(boolean),
  started: count,
  flatAcks: optional(boolean),
});

export const smInfoShape: Shape<SmInfo> = object({ started: count, flatAcks: optional(boolean) });

/** The members that read TAKEN, DELIVERED and CLIENT_ACKED in their flat form (protocol §1.5). */
export function flatAckReaders(members: readonly Member[]): Set<string> {
  return new Set(members.filter((m) => m.info.flatAcks === true).map((m) => m.name));
}

const routable = bytesAtMost(255);
/** Names go into ROUTE headers, whose name fields are at most 255 bytes (protocol §1.4). */
export const nameShape: Shape<string> = (v): v is string => routable(v) && v !== "";

export interface Member {
  /** A component's name; for an external (XEP-0114) component, its domain. */
  name: string;
  role: Role | "component";
  info: Record<string, unknown>;
}

/** The `info` a process of this role must give; an admin tool's or a router's is not read. */
export function infoFits(role: string, info: unknown): info is Record<string, unknown> {
  if (role === "c2s") return c2sInfoShape(info);
  if (role === "sm") return smInfoShape(info);
  return isObject(info);
}

const memberFields = object({ name: nameShape, role: oneOf("c2s", "sm", "component"), info: isObject });
export const memberShape: Shape<Member> = (v): v is Member => memberFields(v) && infoFits(v.role, v.info);

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
