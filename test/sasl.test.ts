import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parsePlain } from "../c2s/sasl/plain.js";
import {
  deriveCredentials,
  deriveKeys,
  SCRAM_ITERATIONS,
  verifyPassword,
  type ScramHash,
  type ScramKeys,
} from "../lib/sasl/scram-credentials.js";
import { ScramClient } from "../sim/scram-client.js";
import { SaslError, ScramServer, type ScramServerOptions } from "../c2s/sasl/scram-server.js";

const b = (s: string) => Buffer.from(s, "utf8");
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** A client side written from RFC 5802 §3, independent of the server code. */
function scramClient(hash: ScramHash, username: string, password: string, clientNonce: string, gs2 = "n,,") {
  const alg = hash === "SHA-1" ? "sha1" : "sha256";
  const hmac = (key: Buffer, data: string) => createHmac(alg, key).update(data).digest();
  const name = username.replace(/=/g, "=3D").replace(/,/g, "=2C");
  const bare = `n=${name},r=${clientNonce}`;
  return {
    first: b(gs2 + bare),
    final(serverFirstBuf: Buffer) {
      const serverFirst = serverFirstBuf.toString("utf8");
      const attrs = Object.fromEntries(serverFirst.split(",").map((a) => [a[0], a.slice(2)]));
      const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, "base64"), Number(attrs.i), hash === "SHA-1" ? 20 : 32, alg);
      const clientKey = hmac(salted, "Client Key");
      const storedKey = createHash(alg).update(clientKey).digest();
      const withoutProof = `c=${b64(gs2)},r=${attrs.r}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const signature = hmac(storedKey, authMessage);
      const proof = Buffer.from(clientKey.map((x, i) => x ^ signature[i]!));
      return {
        message: b(`${withoutProof},p=${proof.toString("base64")}`),
        serverFinal: `v=${hmac(hmac(salted, "Server Key"), authMessage).toString("base64")}`,
      };
    },
  };
}

function lookupOf(users: Record<string, ScramKeys>) {
  const asked: string[] = [];
  const lookup = async (u: string) => {
    asked.push(u);
    return users[u] ?? null;
  };
  return { lookup, asked };
}

async function saslCondition(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(SaslError);
    return (err as SaslError).condition;
  }
  throw new Error("expected a SaslError");
}

// RFC 5802 §5 and RFC 7677 §3.
const VECTORS = [
  {
    hash: "SHA-1" as const,
    salt: "QSXCR+Q6sek8bf92",
    clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
    serverNonce: "3rfcNHYJY1ZVvWVs7j",
    proof: "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    verifier: "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
  },
  {
    hash: "SHA-256" as const,
    salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
    clientNonce: "rOprNGfwEbeRWgbNEkqO",
    serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    proof: "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    verifier: "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  },
];

describe("SCRAM RFC examples", () => {
  for (const v of VECTORS) {
    it(`reproduces the SCRAM-${v.hash} exchange`, async () => {
      const keys = await deriveKeys("pencil", v.hash, Buffer.from(v.salt, "base64"), 4096);
      const { lookup, asked } = lookupOf({ user: keys });
      const server = new ScramServer(v.hash, lookup, { serverNonce: v.serverNonce });
      const nonce = v.clientNonce + v.serverNonce;

      const serverFirst = await server.start(b(`n,,n=user,r=${v.clientNonce}`));
      expect(serverFirst.toString()).toBe(`r=${nonce},s=${v.salt},i=4096`);
      expect(asked).toEqual(["user"]);
      expect(server.username).toBe("user");
      expect(server.authzid).toBeUndefined();

      const serverFinal = await server.finish(b(`c=biws,r=${nonce},p=${v.proof}`));
      expect(serverFinal.toString()).toBe(`v=${v.verifier}`);

      // The test's own client agrees with the RFC, so the tests below that use it mean something.
      const client = scramClient(v.hash, "user", "pencil", v.clientNonce).final(serverFirst);
      expect(client.message.toString()).toBe(`c=biws,r=${nonce},p=${v.proof}`);
      expect(client.serverFinal).toBe(`v=${v.verifier}`);
    });
  }
});

describe("ScramServer", () => {
  async function exchange(hash: ScramHash, keys: Record<string, ScramKeys>, username: string, password: string, options?: ScramServerOptions) {
    const server = new ScramServer(hash, lookupOf(keys).lookup, options);
    const client = scramClient(hash, username, password, "clientnonce123");
    const serverFirst = await server.start(client.first);
    const { message, serverFinal } = client.final(serverFirst);
    return { server, serverFirst: serverFirst.toString(), result: server.finish(message), serverFinal };
  }

  for (const hash of ["SHA-1", "SHA-256"] as const) {
    it(`authenticates with derived ${hash} credentials`, async () => {
      const creds = await deriveCredentials("correct horse ü");
      const { server, serverFirst, result, serverFinal } = await exchange(hash, { alice: creds[hash] }, "alice", "correct horse ü");
      expect((await result).toString()).toBe(serverFinal);
      expect(server.username).toBe("alice");
      // Random server nonce: 18 bytes base64 appended to the client's.
      expect(serverFirst).toMatch(/^r=clientnonce123[A-Za-z0-9+/]{24},s=[A-Za-z0-9+/]{22}==,i=4096$/);
    });

    it(`refuses a wrong ${hash} password with not-authorized`, async () => {
      const creds = await deriveCredentials("right", 1);
      const { result } = await exchange(hash, { alice: creds[hash] }, "alice", "wrong");
      expect(await saslCondition(result)).toBe("not-authorized");
    });
  }

  it("gives an unknown user a normal-looking server-first and then not-authorized", async () => {
    const creds = await deriveCredentials("pw", SCRAM_ITERATIONS);
    const known = await exchange("SHA-256", { alice: creds["SHA-256"] }, "alice", "pw");
    await known.result;
    const unknown = await exchange("SHA-256", { alice: creds["SHA-256"] }, "mallory", "pw");
    expect(await saslCondition(unknown.result)).toBe("not-authorized");

    const shape = /^r=clientnonce123[A-Za-z0-9+/]{24},s=([A-Za-z0-9+/]{22}==),i=4096$/;
    expect(known.serverFirst).toMatch(shape);
    expect(unknown.serverFirst).toMatch(shape);
    // The fake salt is stable per user, else a second probe would expose it.
    const salt = (first: string) => shape.exec(first)![1];
    const again = await exchange("SHA-256", {}, "mallory", "other");
    expect(salt(again.serverFirst)).toBe(salt(unknown.serverFirst));
    const other = await exchange("SHA-256", {}, "trudy", "pw");
    expect(salt(other.serverFirst)).not.toBe(salt(unknown.serverFirst));
    await saslCondition(again.result);
    await saslCondition(other.result);
  });

  it("uses the farm's fake-salt secret when given", async () => {
    const opts = { fakeSaltSecret: b("farm secret") };
    const a = await new ScramServer("SHA-1", async () => null, opts).start(b("n,,n=ghost,r=abc"));
    const c = await new ScramServer("SHA-1", async () => null, opts).start(b("n,,n=ghost,r=abc"));
    const strip = (x: Buffer) => x.toString().replace(/^r=[^,]*,/, "");
    expect(strip(a)).toBe(strip(c));
  });

  it("shows every spelling of one unknown account the same fake salt", async () => {
    const opts = { accountOf: (name: string) => name.toLowerCase() };
    const salt = async (name: string) => /,s=([^,]*)/.exec((await new ScramServer("SHA-1", async () => null, opts).start(b(`n,,n=${name},r=abc`))).toString())![1];
    expect(await salt("Ghost")).toBe(await salt("ghost"));
    expect(await salt("ghost")).not.toBe(await salt("phantom"));
  });

  it("decodes =2C and =3D in usernames and authzids", async () => {
    const { lookup, asked } = lookupOf({});
    const server = new ScramServer("SHA-1", lookup);
    await server.start(b("n,a=ad=3Dmin=2Cx,n=us=2Cer=3Dx,r=abc"));
    expect(asked).toEqual(["us,er=x"]);
    expect(server.username).toBe("us,er=x");
    expect(server.authzid).toBe("ad=min,x");

    // And a whole exchange with such a name.
    const creds = await deriveCredentials("pw", 1);
    const { result, serverFinal } = await exchange("SHA-1", { "a,b=c": creds["SHA-1"] }, "a,b=c", "pw");
    expect((await result).toString()).toBe(serverFinal);
  });

  it("accepts the y channel-binding flag with a matching c=", async () => {
    const creds = await deriveCredentials("pw", 1);
    const server = new ScramServer("SHA-256", lookupOf({ u: creds["SHA-256"] }).lookup);
    const client = scramClient("SHA-256", "u", "pw", "nnn", "y,,");
    const { message, serverFinal } = client.final(await server.start(client.first));
    expect(message.toString()).toMatch(/^c=eSws,/);
    expect((await server.finish(message)).toString()).toBe(serverFinal);
  });

  it("maps a failing lookup to temporary-auth-failure", async () => {
    const server = new ScramServer("SHA-1", async () => {
      throw new Error("db down");
    });
    expect(await saslCondition(server.start(b("n,,n=u,r=abc")))).toBe("temporary-auth-failure");
  });

  describe("malformed client-first", () => {
    const cases: Record<string, Buffer> = {
      "no gs2 header": b("n=user,r=abc"),
      "p= channel binding": b("p=tls-unique,,n=user,r=abc"),
      "unknown gs2 flag": b("x,,n=user,r=abc"),
      "bad authzid": b("n,u=x,n=user,r=abc"),
      "m= extension": b("n,,m=ext,n=user,r=abc"),
      "missing nonce": b("n,,n=user"),
      "empty username": b("n,,n=,r=abc"),
      "bad escape": b("n,,n=us=2Xer,r=abc"),
      "nonce with a bad char": b("n,,n=user,r=ab\u00e9c"),
      "invalid UTF-8": Buffer.concat([b("n,,n=us"), Buffer.from([0xc3, 0x28]), b(",r=abc")]),
      "NUL": b("n,,n=us\0er,r=abc"),
      "empty message": Buffer.alloc(0),
    };
    for (const [name, msg] of Object.entries(cases)) {
      it(name, async () => {
        const { lookup, asked } = lookupOf({});
        expect(await saslCondition(new ScramServer("SHA-1", lookup).start(msg))).toBe("malformed-request");
        expect(asked).toEqual([]);
      });
    }
  });

  describe("malformed client-final", () => {
    async function started() {
      const creds = await deriveCredentials("pw", 1);
      const server = new ScramServer("SHA-1", lookupOf({ user: creds["SHA-1"] }).lookup, { serverNonce: "SSS" });
      const client = scramClient("SHA-1", "user", "pw", "CCC");
      const { message } = client.final(await server.start(client.first));
      return { server, good: message.toString() };
    }
    const cases: Record<string, (good: string) => string> = {
      "bad base64 proof": (g) => g.replace(/p=.*$/, "p=!!notbase64!!"),
      "unpadded base64 proof": (g) => g.replace(/=+$/, ""),
      "short proof": (g) => g.replace(/p=.*$/, "p=AAAA"),
      "bad base64 channel binding": (g) => g.replace("c=biws", "c=b*ws"),
      "channel binding mismatch": (g) => g.replace("c=biws", "c=eSws"),
      "nonce mismatch": (g) => g.replace("r=CCCSSS", "r=CCCSSX"),
      "missing proof": (g) => g.replace(/,p=.*$/, ""),
      "missing channel binding": (g) => g.replace("c=biws,", ""),
    };
    for (const [name, mutate] of Object.entries(cases)) {
      it(name, async () => {
        const { server, good } = await started();
        expect(await saslCondition(server.finish(b(mutate(good))))).toBe("malformed-request");
      });
    }

    it("accepts an extension before the proof", async () => {
      const { server, good } = await started();
      // The extension is part of AuthMessage, so the proof no longer matches.
      expect(await saslCondition(server.finish(b(good.replace(",p=", ",x=1,p="))))).toBe("not-authorized");
    });

    it("refuses finish before start and a second finish", async () => {
      expect(await saslCondition(new ScramServer("SHA-1", async () => null).finish(b("c=biws,r=a,p=AAAA")))).toBe(
        "malformed-request",
      );
      const { server, good } = await started();
      await server.finish(b(good));
      expect(await saslCondition(server.finish(b(good)))).toBe("malformed-request");
    });
  });
});

describe("SCRAM credentials", () => {
  it("derives both hashes with fresh salts and verifies the password", async () => {
    const creds = await deriveCredentials("pencil");
    for (const [hash, size] of [["SHA-1", 20], ["SHA-256", 32]] as const) {
      const keys = creds[hash];
      expect(keys.iterations).toBe(SCRAM_ITERATIONS);
      expect(keys.salt.length).toBe(16);
      expect(keys.storedKey.length).toBe(size);
      expect(keys.serverKey.length).toBe(size);
      expect(await verifyPassword("pencil", keys, hash)).toBe(true);
      expect(await verifyPassword("pencil ", keys, hash)).toBe(false);
      expect(await verifyPassword("Pencil", keys, hash)).toBe(false);
    }
    expect(creds["SHA-1"].salt.equals(creds["SHA-256"].salt)).toBe(false);
    const again = await deriveCredentials("pencil");
    expect(again["SHA-256"].salt.equals(creds["SHA-256"].salt)).toBe(false);
    expect(SCRAM_ITERATIONS).toBe(4096);
  });

  it("matches the RFC 5802 keys", async () => {
    const keys = await deriveKeys("pencil", "SHA-1", Buffer.from("QSXCR+Q6sek8bf92", "base64"));
    expect(await verifyPassword("pencil", keys, "SHA-1")).toBe(true);
    expect(await verifyPassword("pencil", keys, "SHA-256")).toBe(false);
  });

  it("applies SASLprep (test/saslprep.test.ts has the profile's own tests)", async () => {
    const creds = await deriveCredentials("a\u00A0b\u00AD", 1);
    expect(await verifyPassword("a b", creds["SHA-256"], "SHA-256")).toBe(true);
    expect(await verifyPassword("a b\u0000", creds["SHA-256"], "SHA-256")).toBe(false);
    await expect(deriveCredentials("bad\u0001", 1)).rejects.toThrow(RangeError);
    await expect(deriveCredentials("\u00AD", 1)).rejects.toThrow(RangeError);
    await expect(deriveCredentials("x", 0)).rejects.toThrow(RangeError);
  });
});

describe("parsePlain", () => {
  it("parses with and without authzid", () => {
    expect(parsePlain(b("\0user\0pencil"))).toEqual({ authzid: "", authcid: "user", password: "pencil" });
    expect(parsePlain(b("admin@example.com\0user\0p\u00e9ncil"))).toEqual({
      authzid: "admin@example.com",
      authcid: "user",
      password: "p\u00e9ncil",
    });
  });

  const bad: Record<string, Buffer> = {
    "no NUL": b("userpencil"),
    "one NUL": b("user\0pencil"),
    "three NULs": b("\0user\0pen\0cil"),
    "empty authcid": b("\0\0pencil"),
    "empty password": b("\0user\0"),
    "invalid UTF-8": Buffer.concat([b("\0user\0"), Buffer.from([0xff])]),
    empty: Buffer.alloc(0),
  };
  for (const [name, msg] of Object.entries(bad)) {
    it(`refuses ${name}`, async () => {
      expect(await saslCondition(() => parsePlain(msg))).toBe("malformed-request");
    });
  }
});

describe("ScramClient (the simulator's)", () => {
  for (const hash of ["SHA-1", "SHA-256"] as const) {
    it(`authenticates against ScramServer with ${hash} and checks the server's signature`, async () => {
      const keys = (await deriveCredentials("pencil ünïcode"))[hash];
      const server = new ScramServer(hash, async (u) => (u === "user,name" ? keys : null));
      const client = new ScramClient(hash, "user,name", "pencil ünïcode");
      const serverFirst = await server.start(client.first());
      const serverFinal = await server.finish(await client.final(serverFirst));
      expect(server.username).toBe("user,name");
      expect(client.verify(serverFinal)).toBe(true);
      expect(client.verify(Buffer.from("v=AAAA"))).toBe(false);
    });
  }

  it("is refused by the server with a wrong password", async () => {
    const keys = (await deriveCredentials("right"))["SHA-256"];
    const server = new ScramServer("SHA-256", async () => keys);
    const client = new ScramClient("SHA-256", "u", "wrong");
    const serverFirst = await server.start(client.first());
    await expect(server.finish(await client.final(serverFirst))).rejects.toMatchObject({ condition: "not-authorized" });
  });
});
