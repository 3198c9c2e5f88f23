// The outgoing filter chain (module-api.ts, OutgoingFilter), as Prosody's
// "stanzas/out" session filters: every stanza the sm writes to a client
// passes it, highest priority first, and may go on as it is, changed,
// dropped, bounced or held.
import type { Element } from "ltx";
import type { Condition } from "../lib/stanza-error.js";
import type { FilterHandle, FilterVerdict, Outgoing, OutgoingFilter } from "./module-api.js";
import type { Work } from "./origin.js";

interface Entry {
  readonly filter: OutgoingFilter;
  readonly priority: number;
  readonly module: string;
}

/** What became of a stanza: written (as it is now), dropped, bounced with an error, or held by a filter. */
export type Outcome = { write: Outgoing } | { drop: true } | { bounce: Condition; text: string | undefined } | { held: true };

export class OutgoingFilters {
  private readonly chain: Entry[] = [];

  constructor(
    /** Writes what a filter released, running the filters after it (ClientDelivery). */
    private readonly resume: (work: Work, out: Outgoing, after: number) => void,
  ) {}

  add(module: string, filter: OutgoingFilter, priority = 0): FilterHandle {
    const entry: Entry = { filter, priority, module };
    // Stable: among equal priorities, earlier registrations run first.
    const at = this.chain.findIndex((e) => e.priority < priority);
    this.chain.splice(at < 0 ? this.chain.length : at, 0, entry);
    return { release: (work, out) => this.resume(work, out, this.chain.indexOf(entry) + 1) };
  }

  /** Runs the filters from position `from` on, for `work` (what delivers the stanza, or releases it). */
  run(work: Work, out: Outgoing, from = 0): Outcome {
    for (let i = from; i < this.chain.length; i++) {
      const entry = this.chain[i]!;
      const verdict = this.verdict(entry, out, work);
      if (verdict === undefined) continue;
      if (verdict === "drop") return { drop: true };
      if (verdict === "hold") {
        // An offline message is paced by the c2s's reports (protocol §2.4): held, it would stall the backlog.
        if (out.stored) continue;
        return { held: true };
      }
      if ("bounce" in verdict) return { bounce: verdict.bounce, text: verdict.text };
      out = changed(out, verdict.stanza);
    }
    return { write: out };
  }

  private verdict(entry: Entry, out: Outgoing, work: Work): FilterVerdict {
    try {
      return entry.filter(out, work);
    } catch (err) {
      // A filter's bug must not lose the stanza: it goes on as it is.
      out.session.log.error({ err, module: entry.module }, "outgoing filter failed; stanza passed on");
      return undefined;
    }
  }
}

/** The stanza changed: its received bytes no longer say it (even when a filter edited it in place). */
function changed(out: Outgoing, stanza: Element): Outgoing {
  return { ...out, stanza, raw: undefined };
}
