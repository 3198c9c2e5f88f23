// What the PEP tests share: namespaces, a client's caps (XEP-0115) from
// xmpp.js (the sm harness's side is caps-client.ts, re-exported here),
// publish requests and reading their answers.
import { parse, type Element } from "ltx";
import { expect } from "vitest";
import { DOMAIN, type Client, type Harness } from "../sm-harness.js";
import { capsVer } from "../../sm/pep-caps.js";
import { CAPS, CLIENT_NODE, INFO, capsPresence, drain } from "./caps-client.js";

export { CAPS, CLIENT_NODE, INFO, capsPresence, discoInfo, drain, settle } from "./caps-client.js";
import { xml, type TestClient } from "./xmppjs.js";

export const PUBSUB = "http://jabber.org/protocol/pubsub";
export const EVENT = `${PUBSUB}#event`;
export const OWNER = `${PUBSUB}#owner`;
export const ERRORS = `${PUBSUB}#errors`;
export const MOOD = "http://jabber.org/protocol/mood";
export const TUNE = "http://jabber.org/protocol/tune";
export const ALICE = `alice@${DOMAIN}`;

/** alice and bob with mutual subscriptions: alice online, bob connected and yet to send presence. */
export async function contacts(h: Harness): Promise<{ alice: Client; bob: Client }> {
  await h.mutual("alice", "bob");
  const alice = await h.connect(`${ALICE}/a`);
  await alice.online();
  return { alice, bob: await h.connect(`bob@${DOMAIN}/b`) };
}

/** Comes online announcing caps and answers the sm's queries; returns what else it received. */
export async function onlineWithCaps(h: Harness, client: Client, features: string[]): Promise<Element[]> {
  await client.send(capsPresence(features));
  return (await drain(h, client, features)).rest;
}

/** The PEP event notifications among stanzas, for a node. */
export function events(stanzas: Element[], node: string): Element[] {
  return stanzas.filter((s) => {
    const event = s.name === "message" ? s.getChild("event", EVENT) : undefined;
    return event !== undefined && (event.getChild("items")?.attrs.node === node || event.getChild("delete")?.attrs.node === node);
  });
}

export function publishXml(node: string, payload: string, id?: string, options?: Record<string, string>): string {
  const item = id === undefined ? `<item>${payload}</item>` : `<item id='${id}'>${payload}</item>`;
  const opts = options
    ? `<publish-options><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>${PUBSUB}#publish-options</value></field>` +
      Object.entries(options).map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`).join("") +
      `</x></publish-options>`
    : "";
  return `<iq type='set' id='pub'><pubsub xmlns='${PUBSUB}'><publish node='${node}'>${item}</publish>${opts}</pubsub></iq>`;
}

export const mood = (m: string) => `<mood xmlns='${MOOD}'><${m}/></mood>`;

/** Sends an iq and returns its one answer, leaving other stanzas received meanwhile in `others`. */
export async function ask(client: Client, xml: string, others?: Element[]): Promise<Element> {
  const got = await client.request(xml);
  const answers = got.filter((s) => s.name === "iq" && (s.attrs.type === "result" || s.attrs.type === "error"));
  expect(answers).toHaveLength(1);
  others?.push(...got.filter((s) => !answers.includes(s)));
  return answers[0]!;
}

export function itemsOf(result: Element): Element[] {
  return result.getChild("pubsub", PUBSUB)!.getChild("items")!.getChildren("item");
}

export function pubsubError(answer: Element): string | undefined {
  return answer.getChild("error")?.getChildElements().find((c) => c.attrs.xmlns === ERRORS)?.name;
}

/** xmpp.js's iq callee, which test/types/xmppjs.d.ts leaves out. */
interface IqCallee {
  iqCallee: { get(ns: string, name: string, handler: (ctx: { element: Element }) => Element): void };
}

/**
 * Has an xmpp.js client answer the sm's caps disco#info query with
 * `features`: xmpp.js has no entity capabilities of its own, and its iq
 * callee would otherwise answer service-unavailable.
 */
export function answerCaps(c: TestClient, features: string[]): void {
  (c.xmpp as unknown as IqCallee).iqCallee.get(INFO, "query", (ctx) =>
    xml("query", { xmlns: INFO, node: ctx.element.attrs.node }, ...[INFO, CAPS, ...features].map((f) => xml("feature", { var: f }))),
  );
}

/** The <c/> (XEP-0115) an xmpp.js client's presence carries for `features`. */
export function capsOf(features: string[]): ReturnType<typeof xml> {
  const query = parse(`<query xmlns='${INFO}'/>`);
  for (const f of [INFO, CAPS, ...features]) query.c("feature", { var: f });
  return xml("c", { xmlns: CAPS, hash: "sha-1", node: CLIENT_NODE, ver: capsVer(query) });
}
