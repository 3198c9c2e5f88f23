// The server side of one SCRAM exchange (RFC 5802, RFC 7677) for
// SCRAM-SHA-1 and SCRAM-SHA-256. Channel binding (-PLUS) is not offered.
//
//   C: client-first   -> start()  -> server-first
//   C: client-final   -> finish() -> server-final ("v=..."), sent with <success/>
//
// Every failure throws a SaslError; an unknown user and a wrong password
// fail alike (not-authorized, after a normal-looking server-first) so the
// exchange does not tell who has an account.

import { randomBase64 } from "../../lib/random.js";
import { decodeUtf8, SaslError } from "./errors.js";
import { fakeKeys } from "./fake-keys.js";
import { digest, hashSize, hmac, safeEqual, type ScramHash, type ScramKeys } from "../../lib/sasl/scram-credentials.js";

export { SaslError } from "./errors.js";
export type { SaslCondition } from "./errors.js";

/** The mechanisms this module serves, strongest first, with their hash. */
export const SCRAM_MECHANISMS = {
  "SCRAM-SHA-256": "SHA-256",
  "SCRAM-SHA-1": "SHA-1",
} as const satisfies Record<string, ScramHash>;

export type ScramMechanism = keyof typeof SCRAM_MECHANISMS;

/** Returns the stored keys for `username`, or null when there is no such account. */
export type ScramLookup = (username: string) => Promise<ScramKeys | null>;

export interface ScramServerOptions {
  /** The server's part of the nonce; random by default. For tests. */
  serverNonce?: string;
  /**
   * Secret from which unknown users' fake salts are derived. Give every c2s
   * of a farm the same one so a probe sees the same salt whichever node it
   * reaches; by default one random secret per process.
   */
  fakeSaltSecret?: Buffer;
  /** The iteration count shown to unknown users: the one real accounts use. */
  fakeIterations?: number;
  /**
   * The account a username names (its normalized JID): an unknown user's
   * fake salt derives from it, so that every spelling of one name sees one
   * salt, as every spelling of a real account sees its real one.
   */
  accountOf?: (username: string) => string;
}

const SERVER_NONCE_BYTES = 18;

// RFC 5802 §7 "printable": the nonce alphabet (no ",").
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
// Strict, padded base64: Buffer.from(s, "base64") silently skips junk.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// An optional "x=value" extension attribute.
const EXTENSION = /^[A-Za-z]=.+$/s;

function malformed(why: string): SaslError {
  return new SaslError("malformed-request", why);
}

/** The same message for both causes, in case it reaches the client. */
function notAuthorized(): SaslError {
  return new SaslError("not-authorized", "authentication failed");
}

function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64.test(text)) throw malformed(`${what} is not base64`);
  return Buffer.from(text, "base64");
}

/** saslname (RFC 5802 §7): "=2C" is ",", "=3D" is "=", any other "=" is wrong. */
function decodeSaslname(text: string, what: string): string {
  if (text === "") throw malformed(`empty ${what}`);
  if (/=(?!2C|3D)/.test(text)) throw malformed(`bad escape in ${what}`);
  return text.replace(/=2C|=3D/g, (m) => (m === "=2C" ? "," : "="));
}

function decodeMessage(msg: Buffer): string {
  const text = decodeUtf8(msg);
  if (text.includes("\0")) throw malformed("NUL in message");
  return text;
}

type State =
  | { step: "initial" }
  | {
      step: "started";
      gs2Header: string;
      nonce: string;
      /** client-first-message-bare "," server-first-message */
      authPrefix: string;
      keys: ScramKeys;
      known: boolean;
    }
  | { step: "done" };

export class ScramServer {
  readonly hash: ScramHash;
  private readonly lookup: ScramLookup;
  private readonly options: ScramServerOptions;
  private state: State = { step: "initial" };
  private user: string | undefined;
  private authz: string | undefined;

  constructor(hash: ScramHash, lookup: ScramLookup, options: ScramServerOptions = {}) {
    if (options.serverNonce !== undefined && !PRINTABLE.test(options.serverNonce)) {
      throw new RangeError("serverNonce must be printable and without ','");
    }
    this.hash = hash;
    this.lookup = lookup;
    this.options = options;
  }

  /**
   * The username from the client-first message, "=2C"/"=3D" decoded but not
   * otherwise prepared. Set after start() even for an unknown user: trust it
   * only once finish() has resolved.
   */
  get username(): string | undefined {
    return this.user;
  }

  /** The authzid from the gs2 header, if any; the caller checks it (invalid-authzid). */
  get authzid(): string | undefined {
    return this.authz;
  }

  /** Takes the client-first message, returns the server-first message. */
  async start(clientFirst: Buffer): Promise<Buffer> {
    if (this.state.step !== "initial") throw malformed("unexpected client-first message");
    this.state = { step: "done" }; // any throw below ends the exchange
    const text = decodeMessage(clientFirst);

    // gs2-header = gs2-cbind-flag "," [authzid] ","
    const c1 = text.indexOf(",");
    const c2 = c1 < 0 ? -1 : text.indexOf(",", c1 + 1);
    if (c2 < 0) throw malformed("no gs2 header");
    const flag = text.slice(0, c1);
    const authzPart = text.slice(c1 + 1, c2);
    // "y" means the client could bind but believes we cannot, which is true:
    // no -PLUS is advertised, so it is no downgrade.
    if (flag.startsWith("p=")) throw malformed("channel binding is not supported");
    if (flag !== "n" && flag !== "y") throw malformed("bad gs2 channel-binding flag");
    let authzid: string | undefined;
    if (authzPart !== "") {
      if (!authzPart.startsWith("a=")) throw malformed("bad gs2 authzid");
      authzid = decodeSaslname(authzPart.slice(2), "authzid");
    }
    const gs2Header = text.slice(0, c2 + 1);
    const bare = text.slice(c2 + 1);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = bare.split(",");
    if (attrs[0]?.startsWith("m=")) throw malformed("mandatory extension not supported");
    if (attrs.length < 2) throw malformed("client-first message too short");
    const [userAttr, nonceAttr, ...extensions] = attrs as [string, string, ...string[]];
    if (!userAttr.startsWith("n=")) throw malformed("no username");
    if (!nonceAttr.startsWith("r=")) throw malformed("no nonce");
    const username = decodeSaslname(userAttr.slice(2), "username");
    const clientNonce = nonceAttr.slice(2);
    if (!PRINTABLE.test(clientNonce)) throw malformed("bad client nonce");
    if (!extensions.every((e) => EXTENSION.test(e))) throw malformed("bad extension");

    this.user = username;
    this.authz = authzid;

    let found: ScramKeys | null;
    try {
      found = await this.lookup(username);
    } catch (err) {
      throw new SaslError("temporary-auth-failure", "credential lookup failed", { cause: err });
    }
    const { accountOf, fakeSaltSecret, fakeIterations } = this.options;
    const keys = found ?? fakeKeys(this.hash, accountOf?.(username) ?? username, { secret: fakeSaltSecret, iterations: fakeIterations });

    const nonce = clientNonce + (this.options.serverNonce ?? randomBase64(SERVER_NONCE_BYTES));
    const serverFirst = `r=${nonce},s=${keys.salt.toString("base64")},i=${keys.iterations}`;
    this.state = {
      step: "started",
      gs2Header,
      nonce,
      authPrefix: `${bare},${serverFirst}`,
      keys,
      known: found !== null,
    };
    return Buffer.from(serverFirst, "utf8");
  }

  /**
   * Takes the client-final message and returns the server-final message
   * ("v=" ServerSignature) once the proof checks out.
   */
  async finish(clientFinal: Buffer): Promise<Buffer> {
    const state = this.state;
    if (state.step !== "started") throw malformed("unexpected client-final message");
    this.state = { step: "done" };
    const text = decodeMessage(clientFinal);

    // client-final-message = "c=" base64 "," "r=" nonce ["," extensions] "," "p=" base64
    // No value may contain ",", so splitting is exact.
    const attrs = text.split(",");
    if (attrs.length < 3) throw malformed("client-final message too short");
    const cbAttr = attrs[0]!;
    const nonceAttr = attrs[1]!;
    const proofAttr = attrs[attrs.length - 1]!;
    const extensions = attrs.slice(2, -1);
    if (!cbAttr.startsWith("c=")) throw malformed("no channel binding attribute");
    if (!nonceAttr.startsWith("r=")) throw malformed("no nonce");
    if (!proofAttr.startsWith("p=")) throw malformed("no proof");
    if (!extensions.every((e) => EXTENSION.test(e))) throw malformed("bad extension");

    // Without channel binding, c= carries just the gs2 header: a mismatch
    // means the header was tampered with (e.g. "y" turned into "n").
    const cbind = decodeBase64(cbAttr.slice(2), "channel binding");
    if (!cbind.equals(Buffer.from(state.gs2Header, "utf8"))) throw malformed("channel binding mismatch");
    if (nonceAttr.slice(2) !== state.nonce) throw malformed("nonce mismatch");
    const proof = decodeBase64(proofAttr.slice(2), "proof");
    if (proof.length !== hashSize(this.hash)) throw malformed("proof has the wrong length");

    const withoutProof = attrs.slice(0, -1).join(",");
    const authMessage = `${state.authPrefix},${withoutProof}`;
    const { keys } = state;

    // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
    const signature = hmac(this.hash, keys.storedKey, authMessage);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    const ok = safeEqual(digest(this.hash, clientKey), keys.storedKey);
    if (!ok || !state.known) throw notAuthorized();

    const serverSignature = hmac(this.hash, keys.serverKey, authMessage);
    return Buffer.from(`v=${serverSignature.toString("base64")}`, "utf8");
  }
}
