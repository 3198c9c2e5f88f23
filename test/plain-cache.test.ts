// The c2s's memory of verified PLAIN passwords: a client coming back skips
// PBKDF2, and nothing else about PLAIN changes.
import { describe, expect, it } from "vitest";
import { LOST_VOUCHER_TTL_MS, PlainVerifier, plainVoucher, VOUCHER_TTL_MS } from "../c2s/sasl/plain-cache.js";
import { deriveKeys, verifyPassword, type ScramHash, type ScramKeys } from "../lib/sasl/scram-credentials.js";

const keysFor = (password: string) => deriveKeys(password, "SHA-256", Buffer.from(`salt-${password}`), 64);

/** A verifier whose PBKDF2 checks are counted. */
function counting(maxEntries?: number, ttlMs?: number) {
  const calls: string[] = [];
  const check = (password: string, keys: ScramKeys, hash: ScramHash) => {
    calls.push(password);
    return verifyPassword(password, keys, hash);
  };
  return { verifier: new PlainVerifier(maxEntries, ttlMs, check), calls };
}

describe("PlainVerifier", () => {
  it("runs PBKDF2 once for a password that comes back, and every time for a wrong one", async () => {
    const { verifier, calls } = counting();
    const keys = await keysFor("right");
    expect(await verifier.verify("a@localhost", "right", keys, "SHA-256")).toBe("pbkdf2");
    expect(await verifier.verify("a@localhost", "right", keys, "SHA-256")).toBe("remembered");
    expect(calls).toEqual(["right"]);
    expect(await verifier.verify("a@localhost", "wrong", keys, "SHA-256")).toBeNull();
    expect(await verifier.verify("a@localhost", "wrong", keys, "SHA-256")).toBeNull();
    // A failure forgets nothing.
    expect(await verifier.verify("a@localhost", "right", keys, "SHA-256")).toBe("remembered");
    expect(calls).toEqual(["right", "wrong", "wrong"]);
  });

  it("refuses the old password once the stored keys changed (xfarm user passwd)", async () => {
    const { verifier, calls } = counting();
    const before = await keysFor("old");
    expect(await verifier.verify("a@localhost", "old", before, "SHA-256")).toBe("pbkdf2");
    const after = await keysFor("new");
    expect(await verifier.verify("a@localhost", "old", after, "SHA-256")).toBeNull();
    expect(await verifier.verify("a@localhost", "new", after, "SHA-256")).toBe("pbkdf2");
    expect(calls).toEqual(["old", "old", "new"]);
  });

  it("keeps accounts apart: one's password is no other's", async () => {
    const { verifier } = counting();
    const keys = await keysFor("shared");
    expect(await verifier.verify("a@localhost", "shared", keys, "SHA-256")).toBe("pbkdf2");
    expect(await verifier.verify("b@localhost", "other", keys, "SHA-256")).toBeNull();
  });

  it("forgets after its lifetime, and beyond its size the oldest first", async () => {
    const { verifier, calls } = counting(2, 1_000);
    const keys = await keysFor("pw");
    await verifier.verify("a@localhost", "pw", keys, "SHA-256", 0);
    await verifier.verify("a@localhost", "pw", keys, "SHA-256", 999);
    await verifier.verify("a@localhost", "pw", keys, "SHA-256", 1_000);
    expect(calls).toHaveLength(2);
    await verifier.verify("b@localhost", "pw", keys, "SHA-256", 1_001);
    await verifier.verify("c@localhost", "pw", keys, "SHA-256", 1_002);
    expect(calls).toHaveLength(4);
    await verifier.verify("a@localhost", "pw", keys, "SHA-256", 1_003);
    expect(calls).toHaveLength(5);
    await verifier.verify("c@localhost", "pw", keys, "SHA-256", 1_004);
    expect(calls).toHaveLength(5);
  });

  describe("a peer's voucher for a client it redirected", () => {
    it("takes the same password without PBKDF2, once; a wrong one still fails", async () => {
      const { verifier, calls } = counting();
      const keys = await keysFor("pw");
      verifier.accept("a@localhost", plainVoucher("a@localhost", "pw", keys, "SHA-256"));
      expect(await verifier.verify("a@localhost", "guess", keys, "SHA-256")).toBeNull();
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256")).toBe("vouched");
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256")).toBe("remembered");
      expect(calls).toEqual(["guess"]);
    });

    it("holds for that account and those keys only", async () => {
      const { verifier, calls } = counting();
      const keys = await keysFor("pw");
      verifier.accept("a@localhost", plainVoucher("a@localhost", "pw", keys, "SHA-256"));
      expect(await verifier.verify("b@localhost", "pw", keys, "SHA-256")).toBe("pbkdf2");
      const changed = await keysFor("pw2");
      expect(await verifier.verify("a@localhost", "pw", changed, "SHA-256")).toBeNull();
      verifier.accept("c@localhost", plainVoucher("c@localhost", "pw", keys, "SHA-1"));
      expect(await verifier.verify("c@localhost", "pw", keys, "SHA-256")).toBe("pbkdf2");
      expect(calls).toEqual(["pw", "pw", "pw"]);
    });

    it("expires, and a voucher of the wrong size is ignored", async () => {
      const { verifier, calls } = counting();
      const keys = await keysFor("pw");
      verifier.accept("a@localhost", plainVoucher("a@localhost", "pw", keys, "SHA-256"), 0);
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256", VOUCHER_TTL_MS)).toBe("pbkdf2");
      verifier.accept("b@localhost", Buffer.alloc(16));
      expect(await verifier.verify("b@localhost", "pw", keys, "SHA-256")).toBe("pbkdf2");
      expect(calls).toHaveLength(2);
    });
  });

  describe("the sm's voucher for a lost front end's client (protocol §2.8)", () => {
    it("takes the same password without PBKDF2 for longer than a redirect's, once", async () => {
      const { verifier, calls } = counting();
      const keys = await keysFor("pw");
      verifier.acceptLost("a@localhost", plainVoucher("a@localhost", "pw", keys, "SHA-256"), 0);
      verifier.acceptLost("b@localhost", plainVoucher("b@localhost", "pw", keys, "SHA-256"), 0);
      expect(verifier.vouchersHeld(0)).toBe(2);
      expect(await verifier.verify("a@localhost", "guess", keys, "SHA-256", VOUCHER_TTL_MS)).toBeNull();
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256", VOUCHER_TTL_MS)).toBe("vouched");
      expect(verifier.vouchersHeld(VOUCHER_TTL_MS)).toBe(1);
      expect(await verifier.verify("b@localhost", "pw", keys, "SHA-256", LOST_VOUCHER_TTL_MS)).toBe("pbkdf2");
      expect(verifier.vouchersHeld(LOST_VOUCHER_TTL_MS)).toBe(0);
      expect(calls).toEqual(["guess", "pw"]);
    });

    it("keeps a redirect's voucher and the sm's apart: either proves the password, and each expires in its time", async () => {
      const { verifier, calls } = counting();
      const keys = await keysFor("pw");
      const voucher = plainVoucher("a@localhost", "pw", keys, "SHA-256");
      verifier.acceptLost("a@localhost", voucher, 0);
      verifier.accept("b@localhost", plainVoucher("b@localhost", "pw", keys, "SHA-256"), 1);
      verifier.accept("a@localhost", Buffer.alloc(32), 2);
      expect(verifier.vouchersHeld(2)).toBe(3);
      // The redirect's (a wrong one here) does not hide the sm's.
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256", 3)).toBe("vouched");
      expect(verifier.vouchersHeld(VOUCHER_TTL_MS + 1)).toBe(0);
      expect(calls).toEqual([]);
    });

    it("beyond its size, drops the oldest", async () => {
      const calls: string[] = [];
      const check = (password: string, keys: ScramKeys, hash: ScramHash) => (calls.push(password), verifyPassword(password, keys, hash));
      const verifier = new PlainVerifier(undefined, undefined, check, 2);
      const keys = await keysFor("pw");
      for (const u of ["a", "b", "c"]) verifier.acceptLost(`${u}@localhost`, plainVoucher(`${u}@localhost`, "pw", keys, "SHA-256"), 0);
      expect(verifier.vouchersHeld(0)).toBe(2);
      expect(await verifier.verify("a@localhost", "pw", keys, "SHA-256", 1)).toBe("pbkdf2");
      expect(await verifier.verify("c@localhost", "pw", keys, "SHA-256", 1)).toBe("vouched");
      expect(calls).toEqual(["pw"]);
    });
  });

  describe("a PLAIN login on an account that does not exist", () => {
    it("runs the same PBKDF2 as a wrong password on a real account, and fails", async () => {
      const calls: { password: string; iterations: number; hash: ScramHash }[] = [];
      const check = (password: string, keys: ScramKeys, hash: ScramHash) => {
        calls.push({ password, iterations: keys.iterations, hash });
        return verifyPassword(password, keys, hash);
      };
      const verifier = new PlainVerifier(undefined, undefined, check);
      const creds = { "SHA-256": await keysFor("right") };
      expect(await verifier.checkAccount("real@localhost", "guess", creds, 64)).toBeNull();
      expect(await verifier.checkAccount("nobody@localhost", "guess", null, 64)).toBeNull();
      expect(calls).toEqual([
        { password: "guess", iterations: 64, hash: "SHA-256" },
        { password: "guess", iterations: 64, hash: "SHA-256" },
      ]);
      const ok = await verifier.checkAccount("real@localhost", "right", creds, 64);
      expect(ok).toEqual({ proof: "pbkdf2", keys: creds["SHA-256"], hash: "SHA-256" });
    });
  });
});
