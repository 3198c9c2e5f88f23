// Where a stanza from an XEP-0114 component goes (protocol §1.8): to
// another component, to the sm that owns a local user or domain, or back to
// the component as an error.
import type { Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import { batched } from "../lib/link/batch.js";
import { encodeRoute, routeLength } from "../lib/link/frames.js";
import { SessionOp, encodeSessionPayload } from "../lib/link/session-payload.js";
import { badRequestText } from "../lib/stanza-rules.js";
import { errorReplyXml, isError, type Condition } from "../lib/stanza-error.js";
import type { Peer } from "./peer.js";

/** What a component's stanza may be routed to. */
export interface StanzaTargets {
  /** XEP-0114 components by domain: how to write to each. */
  readonly externals: ReadonlyMap<string, (xml: Buffer | string) => void>;
  /** The domains the farm serves. */
  readonly domains: readonly string[];
  /** The linked sm that owns `key`, if any. */
  smFor(key: string): Peer | undefined;
  /** The largest frame an sm reads. */
  readonly maxFrame: number;
}

/** Routes `stanza` (its XML as passed on) from component `domain`; `leading`: whether this router routes at all. */
export function routeExternalStanza(targets: StanzaTargets, leading: boolean, domain: string, stanza: Element, xml: string): void {
  const bounce = (condition: Condition, text?: string) => {
    if (!isError(stanza)) targets.externals.get(domain)?.(errorReplyXml(stanza, condition, { text }));
  };
  if (!leading) return bounce("service-unavailable");
  // The router is the first to read a component's stanza, so it is the one to answer a malformed one.
  const malformed = badRequestText(stanza);
  if (malformed) return bounce("bad-request", malformed);
  const to = parseJid(stanza.attrs.to ?? "");
  if (!to) return bounce("jid-malformed");
  const component = targets.externals.get(to.domain);
  if (component) return component(xml);
  if (!targets.domains.includes(to.domain)) return bounce("remote-server-not-found");
  const key = to.bare;
  const peer = targets.smFor(key);
  if (!peer) return bounce("service-unavailable");
  const payload = encodeSessionPayload(SessionOp.Forward, {}, xml);
  // The sm would close its link on a frame over its limit: such a stanza is refused here.
  if (routeLength(peer.member.name, domain, key, payload.length) > targets.maxFrame) return bounce("resource-constraint");
  batched(peer.socket).write(encodeRoute(peer.member.name, domain, key, payload));
}
