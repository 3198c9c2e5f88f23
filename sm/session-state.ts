// The modules' per-session state (module-api.ts, SessionStateSlot): a JSON
// object per session, module name → value, kept on the Session only once a
// module sets something. Each change goes to the session's front end
// (SESSION_STATE, protocol §2), which gives it back with REBUILD and HANDOFF,
// so the state follows the session to another sm.
import { MAX_SESSION_STATE_META, SessionOp, encodeSessionPayload, type ModuleState } from "../lib/link/session-payload.js";
import { isObject } from "../lib/link/shape.js";
import type { Json, SessionStateSlot } from "./module-api.js";
import type { Session } from "./sessions.js";
import type { SmContext } from "./sm-context.js";

/**
 * Most bytes of one session's state as JSON: less than the SESSION_STATE
 * meta a front end keeps (room for the sid and the keys), since it rides
 * again in REBUILD's and HANDOFF's meta beside their other fields.
 */
export const SESSION_STATE_MAX_BYTES = MAX_SESSION_STATE_META - 512;

export class SessionStates {
  constructor(private readonly ctx: SmContext) {}

  /** The slot of module `module`. */
  slot<T extends Json>(module: string): SessionStateSlot<T> {
    return {
      get: (session) => session.moduleState?.[module] as T | undefined,
      set: (session, value) => this.set(session, module, value),
    };
  }

  /** A session rebuilt or resumed here: its state as its front end kept it (an object, else none). */
  restore(session: Session, state: ModuleState | undefined): void {
    session.moduleState = isObject(state) && Object.keys(state).length > 0 ? state : null;
  }

  private set(session: Session, module: string, value: Json | undefined): boolean {
    const next: ModuleState = { ...session.moduleState };
    if (value === undefined) delete next[module];
    else next[module] = value;
    const json = JSON.stringify(next);
    if (Buffer.byteLength(json) > SESSION_STATE_MAX_BYTES) {
      session.log.warn({ module, bytes: Buffer.byteLength(json) }, "session state too large; not changed");
      return false;
    }
    session.moduleState = Object.keys(next).length > 0 ? next : null;
    // A session waiting for its client has no front end: its state goes with the resumption's HANDOFF.
    if (!session.resumption?.waiting && this.ctx.registry.has(session)) {
      this.ctx.port.send(session.c2s, session.user, encodeSessionPayload(SessionOp.SessionState, { sid: session.sid, state: next }));
    }
    return true;
  }
}
