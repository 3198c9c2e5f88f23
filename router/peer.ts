// A process linked to the router, and the backpressure between two links
// (protocol §1.10): a link that does not drain holds back the links that
// feed it.
import type net from "node:net";
import type { Member } from "../lib/link/member.js";

export interface Peer {
  socket: net.Socket;
  member: Member;
  lastHeard: number;
  linkedAt: number;
  /** Congested links this peer's frames went to: its socket is not read until they all drain. */
  stalledOn: Set<Peer> | null;
  /** Peers not read until this peer's link drains. */
  stalling: Set<Peer> | null;
}

/**
 * Backpressure: `dest` is not reading as fast as `source` sends it frames, so
 * `source` is not read until `dest` drains; TCP then holds the rest on the
 * sender's side, which stops reading its own inputs in turn. A peer that
 * stops reading altogether goes silent and is cut at the silence limit,
 * which releases what it held.
 */
export function stall(source: Peer, dest: Peer): void {
  if (source === dest || source.stalledOn?.has(dest)) return;
  (source.stalledOn ??= new Set()).add(dest);
  (dest.stalling ??= new Set()).add(source);
  source.socket.pause();
}

/** `dest` drained (or is gone): the peers it held are read again. */
export function unstall(dest: Peer): void {
  const held = dest.stalling;
  if (!held) return;
  dest.stalling = null;
  for (const source of held) {
    source.stalledOn?.delete(dest);
    if (source.stalledOn?.size === 0) {
      source.stalledOn = null;
      source.lastHeard = Date.now();
      source.socket.resume();
    }
  }
}
