// XEP-0191 blocklists: the JIDs a user blocks, one key per JID in the
// blocking module's key-value store, and how a JID matches them.
import type { Jid } from "../lib/jid.js";
import type { ModuleKv } from "./module-storage.js";

export type Blocklist = ReadonlySet<string>;

/** Shared by every user who blocks nobody: most users, so they cost no set each. */
const NOBODY: Blocklist = new Set();

/**
 * Whether a list blocks a JID (XEP-0191 §3.1, matching as XEP-0016 §2.1
 * does): an item of its full JID, its bare JID, its domain with its
 * resource, or its domain.
 */
export function blocks(list: Blocklist, jid: Jid): boolean {
  if (list.size === 0) return false;
  return list.has(jid.full) || list.has(jid.bare) || list.has(jid.domain) || (jid.resource !== "" && list.has(`${jid.domain}/${jid.resource}`));
}

/**
 * The lists, read from the store; those of the users with a session on this
 * sm also held in memory, for the outgoing filter, which may not wait on the
 * store. A user's sessions and every change to its list live on the sm that
 * owns the user, so the memory copy there is the store's; any other user's
 * list is read from the store, shared by every sm, when needed.
 */
export class Blocklists {
  private readonly held = new Map<string, Blocklist>();

  constructor(private readonly kv: ModuleKv) {}

  /** The list in memory, if the user has a session here. */
  cached(user: string): Blocklist | undefined {
    return this.held.get(user);
  }

  async of(user: string): Promise<Blocklist> {
    return this.held.get(user) ?? this.read(user);
  }

  /** Holds the list of a user who has a session here. */
  async hold(user: string): Promise<void> {
    if (!this.held.has(user)) this.held.set(user, await this.read(user));
  }

  /** The user has no session here any more. */
  release(user: string): void {
    this.held.delete(user);
  }

  /** The list changed (it is stored already): the memory copy follows, if held. */
  changed(user: string, list: Blocklist): void {
    if (this.held.has(user)) this.held.set(user, list.size === 0 ? NOBODY : list);
  }

  private async read(user: string): Promise<Blocklist> {
    const keys = await this.kv.keys(user);
    return keys.length === 0 ? NOBODY : new Set(keys);
  }
}
