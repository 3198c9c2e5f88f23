// XEP-0157 contact addresses in the sm: the admin's URIs as an XEP-0128 form
// on the server's disco#info, nothing until one is set, and a value that is
// not a URI refused at start-up, naming its key.
import type { Element } from "ltx";
import { afterEach, describe, expect, it } from "vitest";
import { enabledModules } from "../sm/module-config.js";
import { MODULES } from "../sm/modules.js";
import { DOMAIN, Harness } from "./sm-harness.js";

const INFO = "http://jabber.org/protocol/disco#info";

async function serverInfo(h: Harness): Promise<Element> {
  const alice = await h.connect(`alice@${DOMAIN}/a`);
  const [answer] = await alice.request(`<iq type='get' id='i' to='${DOMAIN}'><query xmlns='${INFO}'/></iq>`);
  return answer!.getChild("query", INFO)!;
}

/** The serverinfo form's fields, by var, as value lists. */
function serverinfo(query: Element): Record<string, string[]> | undefined {
  const form = query.getChildren("x", "jabber:x:data").find((x) => x.getChildren("field").some((f) => f.attrs.var === "FORM_TYPE" && f.getChildText("value") === "http://jabber.org/network/serverinfo"));
  if (!form) return undefined;
  return Object.fromEntries(form.getChildren("field").filter((f) => f.attrs.var !== "FORM_TYPE").map((f) => [f.attrs.var, f.getChildren("value").map((v) => v.getText())]));
}

describe("XEP-0157 contact addresses", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("lists the configured addresses in the server's disco#info, each kind a field of URIs", async () => {
    const table = { contact_info: { abuse_addresses: ["mailto:abuse@example.org", "https://example.org/abuse"], admin_addresses: ["xmpp:admin@example.org"] } };
    h = await Harness.create(["alice"], { modules: enabledModules(MODULES, { table, env: {} }) });
    const query = await serverInfo(h);
    expect(serverinfo(query)).toEqual({ "abuse-addresses": ["mailto:abuse@example.org", "https://example.org/abuse"], "admin-addresses": ["xmpp:admin@example.org"] });
    const form = query.getChild("x", "jabber:x:data")!;
    expect(form.attrs.type).toBe("result");
    // The form comes after the features, as XEP-0128 shows it; asking twice gives it again.
    expect(query.children.at(-1)).toBe(form);
    expect(serverinfo(await serverInfo(h))).toEqual(serverinfo(query));
  });

  it("advertises no form until an address is set", async () => {
    h = await Harness.create(["alice"]);
    expect(serverinfo(await serverInfo(h))).toBeUndefined();
  });

  it("refuses a value that is not a URI, naming its key", async () => {
    const table = { contact_info: { security_addresses: ["security@example.org"] } };
    await expect(Harness.create(["alice"], { modules: enabledModules(MODULES, { table, env: {} }) })).rejects.toThrow(
      'config sm.modules.contact_info.security_addresses: "security@example.org" is not a URI',
    );
  });
});
