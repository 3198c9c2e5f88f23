// Interop with Debian's Profanity, a console client, driven in tmux: two of
// its sessions of one account log in without an error, and each shows both
// sides of a conversation the other has with an xmpp.js client (XEP-0280
// carbons); and a session back from away shows, from the account's archive
// (XEP-0313 MAM, Profanity's /mam on), what its other session said and got
// meanwhile.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Farm } from "./harness/farm.js";
import { connectClient, xml, type TestClient } from "./harness/xmppjs.js";
import { PROFANITY, ProfanityDriver, TMUX } from "./interop/profanity.js";

const missing = [PROFANITY, TMUX].filter((f) => !fs.existsSync(f));
if (missing.length > 0 && process.env.CI === "true") throw new Error(`the Profanity test needs ${missing.join(", ")}: apt-get install profanity tmux (.ci/run does)`);

// Skipped only outside CI, on a machine without Profanity or tmux (CI fails above instead).
describe.skipIf(missing.length > 0)("Profanity interop", () => {
  let farm: Farm;
  let driver: ProfanityDriver | undefined;
  let js: TestClient | undefined;

  beforeAll(async () => {
    farm = await Farm.create({ c2sCount: 2 });
    await farm.start();
    await farm.addUser("rose@localhost", "rose-pw");
    await farm.addUser("js@localhost", "js-pw");
    const dir = path.join(farm.dir, "profanity");
    fs.mkdirSync(dir);
    driver = new ProfanityDriver(dir, process.env.XFARM_TEST_CERT!);
  });

  afterAll(async () => {
    driver?.stop();
    await js?.stop();
    await farm?.stop();
    farm?.cleanup();
  });

  it("logs two sessions of one account in without an error, and each shows the other's messages by carbons", async () => {
    js = await connectClient({ port: farm.c2sPorts[0]!.port, username: "js", password: "js-pw", resource: "desk" });
    await js.xmpp.send(xml("presence"));
    const rose = { jid: "rose@localhost", password: "rose-pw" };
    const one = driver!.start({ ...rose, name: "one", resource: "one", port: farm.c2sPorts[0]!.port });
    const two = driver!.start({ ...rose, name: "two", resource: "two", port: farm.c2sPorts[1]!.port });
    await one.shows("rose@localhost/one logged in successfully");
    await two.shows("rose@localhost/two logged in successfully");
    const gets = (body: string) => js!.next((s) => s.is("message") && s.getChildText("body") === body);

    // Profanity enables carbons as it logs in; a message it sends after is
    // handled after that, so once js has it, that session's carbons are on.
    two.type("/msg js@localhost first from two");
    await gets("first from two");
    one.type("/msg js@localhost first from one");
    await gets("first from one");
    // two's chat with js shows what one sent.
    await two.shows("me: first from one");

    // js writes to one: two shows it too.
    await js.xmpp.send(xml("message", { to: "rose@localhost/one", type: "chat" }, xml("body", {}, "hello from js")));
    await one.shows("js@localhost/desk: hello from js");
    await two.shows("js@localhost/desk: hello from js");

    // two answers in its chat window: one shows the answer.
    two.type("reply from two");
    await gets("reply from two");
    await one.shows("me: reply from two");

    // Neither console shows an error (Profanity reports a refused carbons enable there).
    for (const screen of [one, two]) {
      screen.type("/win 1");
      const shown = await screen.shows(`rose@localhost/${screen.name} logged in successfully`);
      expect(shown).not.toMatch(/error/i);
    }
  });

  it("shows a session back from away what was said meanwhile, from the archive (XEP-0313 MAM)", async () => {
    await farm.addUser("lee@localhost", "lee-pw");
    await farm.addUser("kim@localhost", "kim-pw");
    const kim = await connectClient({ port: farm.c2sPorts[0]!.port, username: "kim", password: "kim-pw", resource: "desk" });
    await kim.xmpp.send(xml("presence"));
    const lee = { jid: "lee@localhost", password: "lee-pw" };
    const away = driver!.start({ ...lee, name: "away", resource: "away", port: farm.c2sPorts[0]!.port });
    const stay = driver!.start({ ...lee, name: "stay", resource: "stay", port: farm.c2sPorts[1]!.port });
    await away.shows("lee@localhost/away logged in successfully");
    await stay.shows("lee@localhost/stay logged in successfully");
    away.type("/disconnect");
    await away.shows("lee@localhost logged out successfully.");

    // While away is gone, stay talks with kim.
    await kim.xmpp.send(xml("message", { to: "lee@localhost/stay", type: "chat" }, xml("body", {}, "said while away")));
    // Profanity announces it in its console (the chat window is not open).
    await stay.shows("<< chat message: kim@localhost/desk");
    stay.type("/msg kim@localhost answered while away");
    await kim.next((s) => s.is("message") && s.getChildText("body") === "answered while away");

    // Back, with MAM on, away opens the chat with kim: Profanity asks the archive for it.
    away.type("/connect away");
    await away.shows(/logged in successfully[\s\S]*lee@localhost\/away logged in successfully/);
    away.type("/mam on");
    away.type("/msg kim@localhost");
    const chat = await away.shows("me: answered while away");
    expect(chat).toContain("kim@localhost/desk: said while away");
    expect(chat).not.toMatch(/error/i);
    await kim.stop();
  });
});
