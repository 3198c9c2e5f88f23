// XEP-0092: software name and version; the OS is left out on purpose.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Element } from "ltx";
import { defineModule, type ModuleApi } from "./module-api.js";
import { iqResult } from "./stanza.js";

const NS = "jabber:iq:version";

export const modVersion = defineModule({ name: "version", doc: "XEP-0092 software version: the server's name and version.", enabled: true, options: {}, setup });

function setup(api: ModuleApi): void {
  api.addFeature(NS);
  const version = packageVersion();
  api.hook(`iq-get/host/${NS}:query`, async (event) => {
    const query = new Element("query", { xmlns: NS });
    query.c("name").t("xfarm");
    query.c("version").t(version);
    await api.reply(event, iqResult(event.stanza, query));
    return true;
  });
}

/** The version in xfarm's package.json, found upwards from this file (it runs from sm/ or dist/sm/). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "xfarm" && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    const up = dirname(dir);
    if (up === dir) return "unknown";
    dir = up;
  }
}
