// XEP-0313 §6 archiving preferences: a default (always, never, roster) and
// JIDs always or never archived. Kept as JSON in mod-mam's key-value store;
// a user who never set any has the server's default.
import { Element } from "ltx";
import { bareOf } from "../lib/jid.js";

export const NS_MAM = "urn:xmpp:mam:2";

export type ArchiveDefault = "always" | "never" | "roster";

export interface MamPrefs {
  default: ArchiveDefault;
  always: string[];
  never: string[];
}

/** Bytes of JSON one user's prefs may take: larger ones are refused (policy-violation), far below the kv column's bound. */
export const MAX_PREFS_BYTES = 64 * 1024;

const DEFAULTS = new Set<string>(["always", "never", "roster"]);

export function isArchiveDefault(text: string | undefined): text is ArchiveDefault {
  return text !== undefined && DEFAULTS.has(text);
}

/** The prefs a user stored, or the server's default when none (or unreadable). */
export function readPrefs(json: string | null, serverDefault: ArchiveDefault): MamPrefs {
  if (json !== null) {
    try {
      const p = JSON.parse(json) as Partial<MamPrefs>;
      if (isArchiveDefault(p.default) && Array.isArray(p.always) && Array.isArray(p.never)) return { default: p.default, always: p.always, never: p.never };
    } catch {
      // A broken value is as none: the server's default.
    }
  }
  return { default: serverDefault, always: [], never: [] };
}

/** The prefs of an iq set, or a reason to answer bad-request. */
export function parsePrefs(el: Element): MamPrefs | string {
  const def = el.attrs.default as string | undefined;
  if (!isArchiveDefault(def)) return "default must be always, never or roster";
  const list = (name: string): string[] | string => {
    const jids: string[] = [];
    for (const j of el.getChild(name)?.getChildren("jid") ?? []) {
      const bare = bareOf(j.getText().trim());
      if (!bare) return `not a JID in ${name}: ${j.getText()}`;
      if (!jids.includes(bare)) jids.push(bare);
    }
    return jids;
  };
  const always = list("always");
  const never = list("never");
  if (typeof always === "string") return always;
  if (typeof never === "string") return never;
  // §6.1: a JID in both is never archived.
  return { default: def, always: always.filter((j) => !never.includes(j)), never };
}

export function prefsElement(p: MamPrefs): Element {
  const el = new Element("prefs", { xmlns: NS_MAM, default: p.default });
  for (const name of ["always", "never"] as const) {
    const list = el.c(name);
    for (const jid of p[name]) list.c("jid").t(jid);
  }
  return el;
}

/** Whether messages with `other` (a bare JID) are archived; `inRoster` asked only for the roster default. */
export async function archives(p: MamPrefs, other: string, inRoster: () => Promise<boolean>): Promise<boolean> {
  if (p.never.includes(other)) return false;
  if (p.always.includes(other)) return true;
  if (p.default === "roster") return inRoster();
  return p.default === "always";
}
