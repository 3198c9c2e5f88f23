// The checks a component's AUTH must pass before the router links it
// (protocol §1.2), and the refusals: a stranger's are logged now and then,
// however many come, and cost the same whether the name is known or not.
import type net from "node:net";
import type { Logger } from "../lib/log.js";
import { LogThrottle, clipForLog } from "../lib/log-bounds.js";
import { AUTH_FAILED, LINK_VERSION, authShape, linkProof, newNonce, proofsEqual, type AuthBody } from "../lib/link/auth.js";
import { FrameType, encodeJsonFrame, type Frame } from "../lib/link/frames.js";
import { infoFits, nameShape } from "../lib/link/member.js";
import { parseJson } from "../lib/link/shape.js";

/** Refused links write one log line per this interval; the next line counts the rest. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** An AUTH that passed, and the secret that proved it (the router's WELCOME proves it back). */
export interface Authenticated {
  auth: AuthBody;
  secret: string;
}

export class LinkAuthentication {
  private readonly refusals = new LogThrottle(REFUSAL_LOG_INTERVAL_MS);
  /** Stands in for the secret of an unknown name, so its refusal costs the same HMAC as a wrong secret's. */
  private readonly decoySecret = newNonce();

  /** `secretOf`: the secret of each component name; a name not here is refused. */
  constructor(private readonly secretOf: (name: string) => string | undefined) {}

  /** A stranger's failure is logged now and then, however many come: a line each would be theirs to write. */
  logRefusal(log: Logger, fields: { component?: string; role?: string; reason: string }): void {
    const unlogged = this.refusals.take();
    if (unlogged !== null) log.warn({ ...fields, component: clipForLog(fields.component), unlogged }, "refused a link");
  }

  /**
   * Checks the AUTH `frame` against the HELLO's `nonce`; a refused link is
   * told why and ended, and null returned. `active`: whether this router
   * takes c2s and sm links; `taken`: whether a component has the name.
   */
  check(frame: Frame, socket: net.Socket, nonce: string, log: Logger, active: boolean, taken: (name: string) => boolean): Authenticated | null {
    if (frame.type !== FrameType.Auth) throw new Error(`expected AUTH, got frame type ${frame.type}`);
    let offered: { component?: string; role?: string } = {};
    const refuse = (reason: string, why = reason) => {
      this.logRefusal(log, { ...offered, reason: why });
      socket.end(encodeJsonFrame(FrameType.Refused, { reason }));
      return null;
    };
    let auth: AuthBody;
    try {
      auth = parseJson(frame.body, authShape, "AUTH");
    } catch (err) {
      return refuse((err as Error).message);
    }
    offered = { component: auth.name, role: auth.role };
    if (auth.v !== LINK_VERSION) return refuse(`unsupported link version ${auth.v}`);
    if (!active && (auth.role === "c2s" || auth.role === "sm")) return refuse("this router is passive; link to the active one");
    const secret = nameShape(auth.name) ? this.secretOf(auth.name) : undefined;
    // Computed for an unknown name too, against a decoy: both refusals take the same time and say the same.
    const expected = linkProof("component", secret ?? this.decoySecret, nonce, auth.nonce, auth.name, auth.role);
    if (secret === undefined) return refuse(AUTH_FAILED, "no secret is configured for this name");
    if (!proofsEqual(auth.proof, expected)) return refuse(AUTH_FAILED, "wrong secret");
    // Only now, with the secret proven, may the answer depend on the name.
    if (!infoFits(auth.role, auth.info)) return refuse(`malformed info for a ${auth.role}`);
    const admin = auth.role === "admin" || auth.role === "router";
    if (!admin && taken(auth.name)) return refuse(`a component named "${auth.name}" is already linked`);
    return { auth, secret };
  }
}
