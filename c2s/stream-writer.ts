// The few fixed pieces of XML a c2s writes on its own: stream headers,
// features, stream errors. Everything else it writes comes from the sm as
// bytes, already serialized.
import { escapeXML, escapeXMLText } from "ltx";

export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams";
/** XEP-0478 stream limits advertisement. */
export const NS_LIMITS = "urn:xmpp:stream-limits:0";
/** XEP-0352 client state indication. */
export const NS_CSI = "urn:xmpp:csi:0";

export function streamHeader(from: string, id: string, lang = "en"): string {
  return (
    `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'` +
    ` from='${escapeXML(from)}' id='${id}' version='1.0' xml:lang='${escapeXML(lang)}'>`
  );
}

/** A stream error and the stream's end; `content` is the condition's character data (see-other-host's address). */
export function streamError(condition: string, text?: string, content?: string): string {
  const t = text ? `<text xmlns='${NS_STREAMS_ERR}'>${escapeXML(text)}</text>` : "";
  const c = content ? `<${condition} xmlns='${NS_STREAMS_ERR}'>${escapeXMLText(content)}</${condition}>` : `<${condition} xmlns='${NS_STREAMS_ERR}'/>`;
  return `<stream:error>${c}${t}</stream:error></stream:stream>`;
}

/** The condition alone: a SaslError's message may say more than a client should hear (c2s/sasl/errors.ts). */
export function saslFailure(condition: string): string {
  return `<failure xmlns='${NS_SASL}'><${condition}/></failure>`;
}
