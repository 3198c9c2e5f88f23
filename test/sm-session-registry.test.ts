// The sm's session registry: a user's one session is kept as it is, a Map
// is made for a second one and let go again; lookups, bind order and
// removal behave the same either way.
import { parse } from "ltx";
import { describe, expect, it } from "vitest";
import { parseJid } from "../lib/jid.js";
import { createLogger } from "../lib/log.js";
import { Session, SessionRegistry } from "../sm/sessions.js";

const log = createLogger("test", "silent");
const session = (jid: string, sid: string) => new Session(parseJid(jid)!, "c2s-1", sid, log);

describe("SessionRegistry", () => {
  it("finds, lists in bind order and removes a user's sessions, one or several", () => {
    const reg = new SessionRegistry();
    const phone = session("alice@example.org/phone", "s1");
    const laptop = session("alice@example.org/laptop", "s2");
    const tablet = session("alice@example.org/tablet", "s3");
    reg.add(phone);
    expect(reg.of("alice@example.org")).toEqual([phone]);
    expect(reg.get(parseJid("alice@example.org/phone")!)).toBe(phone);
    expect(reg.get(parseJid("alice@example.org/laptop")!)).toBeUndefined();
    expect(reg.get(parseJid("alice@example.org")!)).toBeUndefined();

    reg.add(laptop);
    reg.add(tablet);
    expect(reg.of("alice@example.org")).toEqual([phone, laptop, tablet]);
    expect(reg.get(parseJid("alice@example.org/laptop")!)).toBe(laptop);

    reg.remove(phone);
    reg.remove(tablet);
    expect(reg.of("alice@example.org")).toEqual([laptop]);
    expect(reg.get(parseJid("alice@example.org/laptop")!)).toBe(laptop);
    expect(reg.bySid("c2s-1", "s1")).toBeUndefined();

    reg.add(phone);
    expect(reg.of("alice@example.org")).toEqual([laptop, phone]);
    reg.remove(laptop);
    reg.remove(phone);
    expect(reg.of("alice@example.org")).toEqual([]);
    expect(reg.size).toBe(0);
  });

  it("lets a session take over its resource, and ignores the removal of the one it replaced", () => {
    const reg = new SessionRegistry();
    const old = session("bob@example.org/home", "s1");
    const next = session("bob@example.org/home", "s2");
    reg.add(old);
    reg.add(next);
    expect(reg.of("bob@example.org")).toEqual([next]);
    reg.remove(old);
    expect(reg.get(parseJid("bob@example.org/home")!)).toBe(next);

    const other = session("bob@example.org/work", "s3");
    const again = session("bob@example.org/work", "s4");
    reg.add(other);
    reg.add(again);
    expect(reg.of("bob@example.org")).toEqual([next, again]);
    reg.remove(other);
    expect(reg.of("bob@example.org")).toEqual([next, again]);
  });

  it("keeps a session's last presence, from the session's JID and to no one, and knows it available until it is cleared", () => {
    const s = session("alice@example.org/phone", "s1");
    expect(s.isAvailable).toBe(false);
    expect(s.presence).toBeNull();
    s.presence = parse("<presence from='alice@example.org/phone' to='alice@example.org' id='p1'><show>away</show><status>on &amp; off</status></presence>");
    expect(s.isAvailable).toBe(true);
    const kept = s.presence!;
    expect(kept.attrs).toEqual({ id: "p1", from: "alice@example.org/phone" });
    expect(kept.getChildText("show")).toBe("away");
    expect(kept.getChildText("status")).toBe("on & off");
    // A new element each time: changing one changes nothing kept.
    kept.attrs.to = "bob@example.org";
    expect(s.presence!.attrs.to).toBeUndefined();
    s.presence = null;
    expect(s.isAvailable).toBe(false);
    expect(s.presence).toBeNull();
  });
});
