// What one account may store and grow in the sm, and the largest stanza the
// sm may send in one link frame (docs/security.md, "What a user can store
// and grow"). The values come from the config (lib/config.ts); a
// SessionManager built without them gets the documented defaults.
import { configDefaults, type Config } from "../lib/config.js";
import { HEADER_ALLOWANCE } from "../lib/link/frames.js";

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
  };
}

export const DEFAULT_LIMITS: Readonly<SmLimits> = smLimits(configDefaults());
