// Mutual challenge/response for links (docs/protocol.md §1.2): both sides
// prove the shared secret with HMAC-SHA-256 over both fresh nonces.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { memberShape, type LinkRole, type Member } from "./member.js";
import { arrayOf, boolean, count, isObject, number, object, oneOf, string, type Shape } from "./shape.js";

export const LINK_VERSION = 1;

export function newNonce(): string {
  return randomBytes(32).toString("base64");
}

export function linkProof(
  side: "component" | "router",
  secret: string,
  routerNonce: string,
  componentNonce: string,
  name: string,
  role: LinkRole,
): string {
  return createHmac("sha256", secret)
    .update(`xfarm-link-1 ${side}\n${routerNonce}\n${componentNonce}\n${name}\n${role}`)
    .digest("hex");
}

export function proofsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface HelloBody {
  v: number;
  router: string;
  nonce: string;
  /** When the router process started (ms since the epoch): the elder of a pair leads (protocol §1.9). */
  started: number;
}
export interface AuthBody {
  v: number;
  name: string;
  role: LinkRole;
  nonce: string;
  proof: string;
  info: Record<string, unknown>;
}
export interface WelcomeBody {
  v: number;
  proof: string;
  members: Member[];
  /** Whether the answering router is the active one of its pair (protocol §1.9). */
  active: boolean;
}
/**
 * What a refused link is told when its name is unknown or its proof wrong, alike, so a prober cannot tell
 * configured names; a component told so at its first link-up has the wrong secret (or none) for its name.
 */
export const AUTH_FAILED = "authentication failed";

export interface RefusedBody {
  reason: string;
}

export const helloShape: Shape<HelloBody> = object({ v: number, router: string, nonce: string, started: count });
export const authShape: Shape<AuthBody> = object({
  v: number,
  name: string,
  role: oneOf<LinkRole>("c2s", "sm", "admin", "router"),
  nonce: string,
  proof: string,
  info: isObject,
});
export const welcomeShape: Shape<WelcomeBody> = object({ v: number, proof: string, members: arrayOf(memberShape), active: boolean });
export const refusedShape: Shape<RefusedBody> = object({ reason: string });
