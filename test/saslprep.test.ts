// SASLprep (RFC 4013) as the server applies it to passwords and usernames.
import saslprepLib from "@mongodb-js/saslprep";
import { describe, expect, it } from "vitest";
import { saslLocalpart, saslprepQuery, saslprepStored } from "../lib/sasl/saslprep.js";

describe("SASLprep", () => {
  it("follows the examples of RFC 4013 §3", () => {
    expect(saslprepStored("I\u00ADX")).toBe("IX"); // SOFT HYPHEN mapped to nothing
    expect(saslprepStored("user")).toBe("user");
    expect(saslprepStored("USER")).toBe("USER"); // no case mapping
    expect(saslprepStored("\u00AA")).toBe("a"); // NFKC
    expect(saslprepStored("\u2168")).toBe("IX");
    expect(() => saslprepStored("\u0007")).toThrow(RangeError); // prohibited
    expect(() => saslprepStored("\u0627\u0031")).toThrow(RangeError); // bidi: RandALCat must end it
  });

  it("maps non-ASCII spaces and refuses private use and surrogates", () => {
    expect(saslprepStored("a\u00A0b\u3000c")).toBe("a b c");
    expect(() => saslprepStored("a\uE000")).toThrow(RangeError);
    expect(() => saslprepStored("a\uD800")).toThrow(RangeError);
  });

  it("refuses unassigned code points in stored strings only (RFC 3454 §7)", () => {
    // An emoji is unassigned in Unicode 3.2, stringprep's version.
    expect(() => saslprepStored("pw\u{1F600}")).toThrow(RangeError);
    expect(saslprepQuery("pw\u{1F600}")).toBe("pw\u{1F600}");
    expect(saslprepQuery("\u0007")).toBeNull();
  });

  it("names one localpart whether or not the client prepared the username", () => {
    expect(saslLocalpart("J\u00FCrgen")).toBe("j\u00FCrgen");
    expect(saslLocalpart("Ju\u0308rgen")).toBe("j\u00FCrgen");
    expect(saslLocalpart("\u2168")).toBe("ix"); // SASLprep's NFKC, which the localpart profile alone refuses
    expect(saslLocalpart("\u05D0\u05D11")).toBe("\u05D0\u05D11"); // SASLprep's bidi check refuses it; RFC 5893's does not
    expect(saslLocalpart("alice@example.com")).toBeNull();
    expect(saslLocalpart("a b")).toBeNull();
    expect(saslLocalpart("")).toBeNull();
  });

  it("prepares printable ASCII, its fast path, as the library does", () => {
    for (let c = 0; c < 0x80; c++) {
      for (const s of [String.fromCharCode(c), `a${String.fromCharCode(c)}B`]) {
        let expected: string | null;
        try {
          expected = saslprepLib(s, { allowUnassigned: true });
        } catch {
          expected = null;
        }
        expect(saslprepQuery(s), `U+${c.toString(16)}`).toBe(expected);
      }
    }
    expect(saslprepQuery("")).toBe("");
  });
});
