// JIDs per RFC 7622: the examples of RFC 7622 §3.5 and RFC 8265 §3.5/§4.3,
// octet lengths, bidi, zero-width and other disallowed code points, IDNA
// domains, case mapping, idempotence, and the ASCII fast path agreeing with
// the full profiles; the Jid value type.
import { describe, expect, it } from "vitest";
import { Jid, bareOf, domainpart, localpart, parseJid, resourcepart } from "../lib/jid.js";
import { opaqueString, usernameCaseMapped } from "../lib/precis.js";

const norm = (text: string) => parseJid(text)?.full ?? null;
const parts = (j: Jid | null) => j && { local: j.local, domain: j.domain, resource: j.resource };

describe("RFC 7622 §3.5 examples", () => {
  it("accepts the valid JIDs of §3.5.1", () => {
    for (const jid of [
      "juliet@example.com",
      "juliet@example.com/foo",
      "juliet@example.com/foo bar",
      "juliet@example.com/foo@bar",
      "foo\\20bar@example.com",
      "fussball@example.com",
      "fußball@example.com",
      "π@example.com",
      "σ@example.com/foo",
      "ς@example.com/foo",
      "king@example.com/♚",
      "example.com",
      "example.com/foobar",
      "a.example.com/b@example.net",
    ]) {
      expect(norm(jid), jid).toBe(jid);
    }
    // Σ is case-mapped to σ (and stays distinct from final ς and from "ss").
    expect(norm("Σ@example.com/foo")).toBe("σ@example.com/foo");
  });

  it("refuses the invalid JIDs of §3.5.2", () => {
    for (const jid of [
      '"juliet"@example.com',
      "foo bar@example.com",
      "@example.com/",
      "henry\u2163@example.com", // ROMAN NUMERAL FOUR: a compatibility character
      "♚@example.com", // a symbol in a localpart
      "juliet@",
      "/foobar",
    ]) {
      expect(norm(jid), jid).toBeNull();
    }
  });

  it("splits at the first slash, then the first @ before it", () => {
    expect(parts(parseJid("a@b/c@d/e"))).toEqual({ local: "a", domain: "b", resource: "c@d/e" });
    expect(parseJid("a@b@c")).toBeNull();
    expect(parseJid("")).toBeNull();
  });
});

describe("UsernameCaseMapped (RFC 8265 §3.3)", () => {
  it("follows the examples of §3.5", () => {
    expect(usernameCaseMapped("juliet@example.com")).toBe("juliet@example.com"); // "@" is ASCII7; RFC 7622 excludes it
    expect(usernameCaseMapped("fussball")).toBe("fussball");
    expect(usernameCaseMapped("fußball")).toBe("fußball");
    expect(usernameCaseMapped("π")).toBe("π");
    expect(usernameCaseMapped("Σ")).toBe("σ");
    expect(usernameCaseMapped("σ")).toBe("σ");
    expect(usernameCaseMapped("ς")).toBe("ς");
    expect(usernameCaseMapped("foo bar")).toBeNull();
    expect(usernameCaseMapped("")).toBeNull();
    expect(usernameCaseMapped("henry\u2163")).toBeNull();
    expect(usernameCaseMapped("♚")).toBeNull();
  });

  it("maps width, then case, then NFC", () => {
    expect(localpart("ＪＵＬＩＥＴ")).toBe("juliet"); // fullwidth
    expect(localpart("ｶﾀｶﾅ")).toBe("カタカナ"); // halfwidth katakana
    expect(localpart("Jürgen")).toBe("jürgen");
    expect(localpart("Ju\u0308rgen")).toBe("jürgen"); // decomposed ü composes
    expect(localpart("ÅSA")).toBe("åsa");
    expect(localpart("\u212Bsa")).toBeNull(); // ANGSTROM SIGN: a compatibility (singleton) character
    expect(localpart("\u212Aelvin")).toBeNull(); // KELVIN SIGN is refused before case mapping
    expect(localpart("ＡＢ＠Ｃ")).toBeNull(); // FULLWIDTH @ becomes "@", which a localpart must not hold
  });

  it("refuses spaces, controls, zero-width and format characters", () => {
    for (const s of ["a b", "a\u00A0b", "a\tb", "a\u0000b", "a\u007Fb", "a\u0085b", "a\u200Bb", "a\u2060b", "a\uFEFFb", "a\u00ADb", "a\u202Eb", "a\u200Eb", "a\u2066b", "a\uE000b", "a\uFDD0b", "a\u{10FFFF}"]) {
      expect(localpart(s), JSON.stringify(s)).toBeNull();
    }
  });

  it("refuses symbols, punctuation outside ASCII, titlecase, old Hangul jamo, unassigned code points", () => {
    for (const s of ["a\u2022b", "a\u00ABb", "\u01C5", "\u1100\u1161", "a\u0378b", "\u{1F600}"]) {
      expect(localpart(s), JSON.stringify(s)).toBeNull();
    }
  });

  it("applies the contextual rules of RFC 5892 Appendix A", () => {
    expect(localpart("l\u00B7l")).toBe("l\u00B7l"); // MIDDLE DOT between two l
    expect(localpart("a\u00B7b")).toBeNull();
    expect(localpart("\u0375\u03B1")).toBe("\u0375\u03B1"); // KERAIA before Greek
    expect(localpart("\u0375a")).toBeNull();
    expect(localpart("\u05D0\u05F3")).toBe("\u05D0\u05F3"); // GERESH after Hebrew
    expect(localpart("a\u05F3")).toBeNull();
    expect(localpart("\u30A2\u30FB\u30A2")).toBe("\u30A2\u30FB\u30A2"); // KATAKANA MIDDLE DOT with Katakana
    expect(localpart("a\u30FBb")).toBeNull();
    expect(localpart("\u0627\u0661\u0662")).toBe("\u0627\u0661\u0662"); // Arabic-Indic digits
    expect(localpart("\u0627\u06F1\u06F2")).toBe("\u0627\u06F1\u06F2"); // Extended Arabic-Indic digits
    expect(localpart("\u0627\u0661\u06F2")).toBeNull(); // the two mixed
    expect(localpart("\u0915\u094D\u200D\u0937")).toBe("\u0915\u094D\u200D\u0937"); // ZWJ after a virama
    expect(localpart("\u0915\u094D\u200C\u0937")).toBe("\u0915\u094D\u200C\u0937"); // ZWNJ after a virama
    expect(localpart("a\u200Db")).toBeNull();
    expect(localpart("\u200Ca")).toBeNull();
  });

  it("applies the Bidi Rule (RFC 5893) to right-to-left strings", () => {
    expect(localpart("\u05D0\u05D1")).toBe("\u05D0\u05D1"); // Hebrew
    expect(localpart("\u0627\u0644\u0639\u0631\u0628\u064A\u0629")).toBe("\u0627\u0644\u0639\u0631\u0628\u064A\u0629"); // Arabic
    expect(localpart("\u05D0\u05D11")).toBe("\u05D0\u05D11"); // may end in a European digit
    expect(localpart("\u05D0a")).toBeNull(); // L in an RTL string
    expect(localpart("a\u05D0")).toBeNull(); // R in an LTR string
    expect(localpart("1\u05D0")).toBeNull(); // must start with R or AL
    expect(localpart("\u0627\u0661\u0031")).toBeNull(); // AN and EN together
    expect(localpart("abc1")).toBe("abc1"); // LTR-only strings are not bound by it
  });

  it("is idempotent", () => {
    for (const s of ["ＪＵＬＩＥＴ", "Ju\u0308rgen", "Σ", "İstanbul", "ΣΑΣ", "ｶﾞ", "\u0915\u094D\u200D\u0937"]) {
      const once = usernameCaseMapped(s);
      expect(once, s).not.toBeNull();
      expect(usernameCaseMapped(once!), s).toBe(once);
    }
  });
});

describe("OpaqueString (RFC 8265 §4.2)", () => {
  it("follows the examples of §4.3", () => {
    expect(opaqueString("correct horse battery staple")).toBe("correct horse battery staple");
    expect(opaqueString("Correct Horse Battery Staple")).toBe("Correct Horse Battery Staple");
    expect(opaqueString("πßå")).toBe("πßå");
    expect(opaqueString("Jack of ♦s")).toBe("Jack of ♦s");
    expect(opaqueString("foo\u1680bar")).toBe("foo bar"); // OGHAM SPACE MARK
    expect(opaqueString("")).toBeNull();
    expect(opaqueString("my cat is a \u0009by")).toBeNull();
  });

  it("keeps case and width, maps non-ASCII spaces, composes", () => {
    expect(resourcepart("Desk Top")).toBe("Desk Top");
    expect(resourcepart("ＰＣ")).toBe("ＰＣ");
    expect(resourcepart("a\u3000b")).toBe("a b");
    expect(resourcepart("Handy-Ju\u0308rgen")).toBe("Handy-Jürgen");
    expect(resourcepart("Gajim \u{1F600}")).toBe("Gajim \u{1F600}");
  });

  it("refuses bidi controls, zero-width and other ignorable or control code points", () => {
    for (const s of ["a\u202Eb", "a\u202Ab", "a\u2067b", "a\u200Eb", "a\u200Fb", "a\u200Bb", "a\u2060b", "a\uFEFFb", "a\u00ADb", "a\u200Db", "a\u0007", "a\u0085b", "a\u2028b", "a\uFFFFb", "a\u{E0001}"]) {
      expect(resourcepart(s), JSON.stringify(s)).toBeNull();
    }
  });
});

describe("domainparts (IDNA, RFC 7622 §3.2)", () => {
  it("lowercases, strips the final dot, keeps U-labels", () => {
    expect(domainpart("Example.COM.")).toBe("example.com");
    expect(domainpart("EXÄMPLE.com")).toBe("exämple.com");
    expect(domainpart("xn--exmple-cua.com")).toBe("exämple.com"); // A-labels become U-labels
    expect(domainpart("ＥＸＡＭＰＬＥ。com")).toBe("example.com"); // width and ideographic full stop
    expect(domainpart("faß.de")).toBe("faß.de"); // IDNA2008, not transitional
    expect(domainpart("127.0.0.1")).toBe("127.0.0.1");
    expect(domainpart("[::1]")).toBe("[::1]");
    expect(domainpart("[2001:DB8::1]")).toBe("[2001:db8::1]");
  });

  it("refuses what is no domain name", () => {
    for (const d of ["", ".", "a..b", ".a", "a b", "a_b.com", "-a.com", "a-.com", "a%41.com", "ab--c.com", "xn--abc", "a@b", "[::1", "[example.com]", "x".repeat(64) + ".com", "\u05D0a.com", "a\u200Cb.com"]) {
      expect(domainpart(d), JSON.stringify(d)).toBeNull();
    }
    expect(domainpart("x".repeat(63) + ".com")).not.toBeNull();
  });
});

describe("lengths in octets of UTF-8", () => {
  it("takes 1023 octets and refuses 1024, in every part", () => {
    const ascii = "a".repeat(1023);
    const threeByte = "\u4E00".repeat(341); // 1023 octets, 341 UTF-16 units
    expect(localpart(ascii)).toBe(ascii);
    expect(localpart(ascii + "a")).toBeNull();
    expect(localpart(threeByte)).toBe(threeByte);
    expect(localpart(threeByte + "a")).toBeNull(); // 342 units, 1024 octets
    expect(resourcepart(threeByte)).toBe(threeByte);
    expect(resourcepart("\u{1F600}".repeat(256))).toBeNull(); // 512 units, 1024 octets
    expect(resourcepart("\u{1F600}".repeat(255) + "abc")).not.toBeNull(); // 1023 octets
    const labels = (n: number) => Array.from({ length: n }, () => "\u00E4".repeat(20)).join(".");
    expect(domainpart(labels(24))).not.toBeNull(); // 24 × 40 + 23 = 983 octets
    expect(domainpart(labels(26))).toBeNull(); // 1065 octets
    expect(parseJid(`${threeByte}@example.com/${threeByte}`)).not.toBeNull();
  });

  it("counts after normalization", () => {
    // 400 × (a + COMBINING DIAERESIS + COMBINING MACRON) is 2000 octets; NFC makes it 400 × ǟ, 800 octets.
    expect(localpart("a\u0308\u0304".repeat(400))).toBe("\u01DF".repeat(400));
    expect(localpart("a".repeat(50_000))).toBeNull();
  });
});

describe("the ASCII fast path", () => {
  it("agrees with the full profiles on every printable ASCII character", () => {
    for (let c = 0x20; c < 0x7f; c++) {
      const s = `a${String.fromCharCode(c)}B`;
      const slow = usernameCaseMapped(s);
      expect(localpart(s), JSON.stringify(s)).toBe(slow !== null && !/["&'/:<>@]/.test(slow) ? slow : null);
      expect(resourcepart(s), JSON.stringify(s)).toBe(opaqueString(s));
    }
  });

  it("normalizes bare JIDs as lookups expect", () => {
    expect(bareOf("Alice@Example.COM/Phone")).toBe("alice@example.com");
    expect(bareOf("ＡＬＩＣＥ@example.com")).toBe("alice@example.com");
    expect(bareOf("alice@exa mple.com")).toBeNull();
  });
});

describe("the Jid value", () => {
  it("holds the normalized parts and its bare and full forms", () => {
    const j = parseJid("ＪＵＬＩＥＴ@Example.COM./Balcony")!;
    expect(j).toBeInstanceOf(Jid);
    expect(parts(j)).toEqual({ local: "juliet", domain: "example.com", resource: "Balcony" });
    expect(j.bare).toBe("juliet@example.com");
    expect(j.full).toBe("juliet@example.com/Balcony");
    expect(`${j}`).toBe(j.full);
    expect(JSON.stringify({ to: j })).toBe('{"to":"juliet@example.com/Balcony"}');
    // A bare JID's full form is its bare form; a domain JID's bare form is its domain.
    expect(parseJid("juliet@example.com")!.full).toBe("juliet@example.com");
    expect(parseJid("example.com/x")!.bare).toBe("example.com");
  });

  it("is equal to another exactly when both name the same JID once normalized", () => {
    const a = parseJid("Juliet@EXAMPLE.com/balcony")!;
    expect(a.equals(parseJid("juliet@example.com/balcony")!)).toBe(true);
    expect(a.equals(parseJid("juliet@example.com/Balcony")!)).toBe(false); // resources keep their case
    expect(a.equals(parseJid("juliet@example.com")!)).toBe(false);
  });

  it("makes its bare and domain JIDs, and is itself when it is one", () => {
    const j = parseJid("juliet@example.com/balcony")!;
    const bare = j.withoutResource();
    expect(bare.full).toBe("juliet@example.com");
    expect(bare.bare).toBe(j.bare);
    expect(bare.resource).toBe("");
    expect(bare.withoutResource()).toBe(bare);
    expect(j.domainJid().full).toBe("example.com");
    const domain = parseJid("example.com")!;
    expect(domain.domainJid()).toBe(domain);
  });

  it("takes another resourcepart only in its RFC 7622 form", () => {
    const j = parseJid("juliet@example.com/balcony")!;
    expect(j.withResource("Garde\u0301n")!.full).toBe("juliet@example.com/Gard\u00e9n"); // NFC
    expect(j.withResource("")).toBeNull();
    expect(j.withResource("a\u202eb")).toBeNull();
    expect(j.resource).toBe("balcony");
  });

  it("is parsed from invalid input as null, never thrown", () => {
    for (const text of ["", "@example.com", "juliet@", "juliet@exa mple.com", "juliet@example.com/"]) expect(parseJid(text), text).toBeNull();
  });
});
