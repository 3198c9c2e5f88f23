// What one account may store and grow in the sm, and the largest stanza the
// sm may send in one link frame (docs/security.md, "What a user can store
// and grow"). The values come from the config (lib/config.ts); a
// SessionManager built without them gets the documented defaults.
import { configDefaults, type Config } from "../lib/config.js";
import { HEADER_ALLOWANCE } from "../lib/link/frames.js";
import type { Store } from "../xdb-sql/store.js";

export interface SmLimits {
  /** The largest stanza the sm builds: link.max_frame less the headers a frame may need. */
  stanzaBytes: number;
  /** Roster records per account, pending inbound requests included. */
  rosterItems: number;
  /** Bytes of private XML (XEP-0049) per account, and per element. */
  privateBytes: number;
  privateItemBytes: number;
  /** PEP nodes per account, items per node, and bytes per item payload. */
  pepNodes: number;
  pepItems: number;
  pepItemBytes: number;
  /** JIDs one session has sent directed available presence to (RFC 6121 §4.6). */
  directedPresences: number;
  /** Stanzas, and their bytes, waiting in the sm for one account (sm/queue.ts). */
  queueStanzas: number;
  queueBytes: number;
  /** Offline messages one account may hold, and their UTF-8 bytes. */
  offlineMessages: number;
  offlineBytes: number;
}

export function smLimits(c: Pick<Config, "sm" | "link">): SmLimits {
  return {
    stanzaBytes: c.link.max_frame - HEADER_ALLOWANCE,
    rosterItems: c.sm.max_roster_items,
    privateBytes: c.sm.max_private_size,
    privateItemBytes: c.sm.max_private_item_size,
    pepNodes: c.sm.max_pep_nodes,
    pepItems: c.sm.max_pep_items,
    pepItemBytes: c.sm.max_pep_item_size,
    directedPresences: c.sm.max_directed_presences,
    queueStanzas: c.sm.max_user_queue,
    queueBytes: c.sm.max_user_queue_bytes,
    offlineMessages: c.sm.max_offline_messages,
    offlineBytes: c.sm.max_offline_bytes,
  };
}

export const DEFAULT_LIMITS: Readonly<SmLimits> = smLimits(configDefaults());

/**
 * What an account holds beyond the limits, one line each. Growth through
 * the sm is held to the limits; data that arrives otherwise (xfarm import)
 * is kept as it is, and reported with this: the account can still fetch
 * it, PEP items paged, a roster too large to send refused, until the user
 * makes room.
 */
export async function overLimits(store: Store, user: string, limits: Readonly<SmLimits>): Promise<string[]> {
  const over: string[] = [];
  const roster = await store.countRoster(user);
  if (roster > limits.rosterItems) over.push(`${roster} roster items (sm.max_roster_items ${limits.rosterItems})`);
  const privates = await store.privateSizes(user);
  const privateBytes = privates.reduce((sum, p) => sum + p.bytes, 0);
  if (privateBytes > limits.privateBytes) over.push(`${privateBytes} bytes of private XML (sm.max_private_size ${limits.privateBytes})`);
  for (const p of privates) {
    if (p.bytes > limits.privateItemBytes) over.push(`private element {${p.key.namespace}}${p.key.name} of ${p.bytes} bytes (sm.max_private_item_size ${limits.privateItemBytes})`);
  }
  const nodes = await store.listPepNodes(user);
  if (nodes.length > limits.pepNodes) over.push(`${nodes.length} PEP nodes (sm.max_pep_nodes ${limits.pepNodes})`);
  for (const { node } of nodes) {
    const items = await store.pepItemSizes(user, node);
    if (items.length > limits.pepItems) over.push(`${items.length} items in PEP node ${node} (sm.max_pep_items ${limits.pepItems})`);
    const big = items.filter((i) => i.bytes > limits.pepItemBytes).length;
    if (big > 0) over.push(`${big} items over ${limits.pepItemBytes} bytes in PEP node ${node} (sm.max_pep_item_size)`);
  }
  return over;
}
