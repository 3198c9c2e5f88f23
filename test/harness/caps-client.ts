// A client's side of XEP-0115 entity capabilities in the sm harness: the
// presence that announces them, and the answers to the disco#info queries
// the sm sends to learn what a 'ver' means.
import { parse, type Element } from "ltx";
import { capsVer } from "../../sm/pep-caps.js";
import type { Client, Harness } from "../sm-harness.js";

export const INFO = "http://jabber.org/protocol/disco#info";
export const CAPS = "http://jabber.org/protocol/caps";
export const CLIENT_NODE = "https://client.example.org";

/** A client's disco#info, as its caps 'ver' hashes it. */
export function discoInfo(features: string[], node?: string): Element {
  const query = parse(`<query xmlns='${INFO}'/>`);
  if (node) query.attrs.node = node;
  query.c("identity", { category: "client", type: "pc", name: "Test" });
  for (const f of [INFO, CAPS, ...features]) query.c("feature", { var: f });
  return query;
}

export function capsPresence(features: string[], extra = ""): string {
  const ver = capsVer(discoInfo(features));
  return `<presence>${extra}<c xmlns='${CAPS}' hash='sha-1' node='${CLIENT_NODE}' ver='${ver}'/></presence>`;
}

/** Lets every queued job and the continuations of answered requests run. */
export async function settle(h: Harness): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await h.sm.idle();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Takes what a client received, answering the sm's caps disco#info queries
 * with `features` (null: leaving them unanswered) until nothing more comes.
 */
export async function drain(h: Harness, client: Client, features: string[] | null): Promise<{ asked: Element[]; rest: Element[] }> {
  const asked: Element[] = [];
  const rest: Element[] = [];
  for (;;) {
    await settle(h);
    const got = client.received();
    if (got.length === 0) return { asked, rest };
    for (const s of got) {
      const query = s.name === "iq" && s.attrs.type === "get" ? s.getChild("query", INFO) : undefined;
      if (!query) {
        rest.push(s);
        continue;
      }
      asked.push(s);
      if (!features) continue;
      const result = parse(`<iq type='result' id='${s.attrs.id}' to='${s.attrs.from}'/>`);
      result.cnode(discoInfo(features, query.attrs.node));
      await client.send(result.toString());
    }
  }
}
