// JIDs as the farm keys them: localpart and domain lowercased (the common
// case of RFC 7622's case mapping), resource kept as sent.

export interface Jid {
  local: string;
  domain: string;
  resource: string;
}

const MAX_PART = 1023;
// Characters RFC 7622 forbids in a localpart.
const BAD_LOCAL = /["&'/:<>@\s]/;

/** Parses a JID; returns null when it is not a valid JID. */
export function parseJid(text: string): Jid | null {
  if (!text) return null;
  let rest = text;
  let resource = "";
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    resource = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (!resource || resource.length > MAX_PART) return null;
  }
  let local = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    local = rest.slice(0, at).toLowerCase();
    rest = rest.slice(at + 1);
    if (!local || local.length > MAX_PART || BAD_LOCAL.test(local)) return null;
  }
  const domain = rest.toLowerCase().replace(/\.$/, "");
  if (!domain || domain.length > MAX_PART || /[\s@/"<>&']/.test(domain)) return null;
  return { local, domain, resource };
}

export function bare(jid: Jid): string {
  return jid.local ? `${jid.local}@${jid.domain}` : jid.domain;
}

export function full(jid: Jid): string {
  const b = bare(jid);
  return jid.resource ? `${b}/${jid.resource}` : b;
}

/** The bare JID of a JID string, normalized; null if the string is not a JID. */
export function bareOf(text: string): string | null {
  const j = parseJid(text);
  return j ? bare(j) : null;
}
