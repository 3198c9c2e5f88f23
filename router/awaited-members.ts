// The members a router that has just become active waits for (protocol
// §1.9). Its pair peer shared its member table while active; after a
// failover every c2s and sm re-links within a few seconds, in no particular
// order. Until each is back (or AWAIT_MS passed) it stays listed, with the
// info it had, and frames for it are held: so no process sees an sm vanish
// and move its users for the moment of a re-link, and no delivery bounces
// off a front end that is only re-linking.
import type { Member } from "../lib/link/member.js";

/**
 * How long after a takeover the members of the old active router's table are
 * waited for: a component that left a hung router (SIGSTOP) may first spend
 * its 6 s handshake timeout on that router's address (lib/link/link-client.ts)
 * before it tries this one.
 */
export const AWAIT_MS = 10_000;
/** Bytes of frames held for awaited members in all; beyond, a frame is returned to its sender as undeliverable. */
const MAX_HELD_BYTES = 64 * 1024 * 1024;

/** A ROUTE frame held for an awaited member: its bytes as received, who sent it, and its header's `to` and `key`. */
export interface HeldFrame {
  readonly from: string;
  readonly to: string;
  readonly key: string;
  readonly raw: Buffer;
}

export class AwaitedMembers {
  /** The peer router's member table, as it last shared it. */
  private remembered: Member[] = [];
  private readonly awaited = new Map<string, { member: Member; held: HeldFrame[] }>();
  private heldBytes = 0;
  private until = 0;

  /** The active peer's member table (a passive router keeps it for its turn). */
  remember(members: readonly Member[]): void {
    // External components re-link on their own, and are not routed by key.
    this.remembered = members.filter((m) => m.role === "c2s" || m.role === "sm");
  }

  /** This router became active: every member of the remembered table not linked here is awaited. */
  begin(linked: ReadonlySet<string>, now: number): void {
    this.until = now + AWAIT_MS;
    for (const member of this.remembered) if (!linked.has(member.name)) this.awaited.set(member.name, { member, held: [] });
  }

  get members(): Member[] {
    return [...this.awaited.values()].map((a) => a.member);
  }

  has(name: string): boolean {
    return this.awaited.has(name);
  }

  /** Holds a frame for an awaited member; false when too much is held already. */
  hold(name: string, frame: HeldFrame): boolean {
    const awaited = this.awaited.get(name);
    if (!awaited || this.heldBytes + frame.raw.length > MAX_HELD_BYTES) return false;
    awaited.held.push(frame);
    this.heldBytes += frame.raw.length;
    return true;
  }

  /** Once AWAIT_MS has passed: the members that never came, each with what was held for it. */
  expire(now: number): { name: string; held: HeldFrame[] }[] {
    if (this.awaited.size === 0 || now < this.until) return [];
    return [...this.awaited.keys()].map((name) => ({ name, held: this.take(name) }));
  }

  /** Forgets every awaited member (this router turned passive): what was held goes back to its senders. */
  clear(): { name: string; held: HeldFrame[] }[] {
    return [...this.awaited.keys()].map((name) => ({ name, held: this.take(name) }));
  }

  /** Takes a member off the list (it linked, or is given up): what was held for it, oldest first. */
  take(name: string): HeldFrame[] {
    const awaited = this.awaited.get(name);
    if (!awaited) return [];
    this.awaited.delete(name);
    for (const f of awaited.held) this.heldBytes -= f.raw.length;
    return awaited.held;
  }
}
