// RFC 6121 §8.5: delivering messages to local users.
//
// A message is delivered as the bytes it arrived in, unless a hook that runs
// before delivery changed it (changeMessage): then as its element. This is
// the one place that decides it, for delivery and offline storage alike.
import type { Element } from "ltx";
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";
import type { Session } from "./sessions.js";

/** Messages a hook changed on their way in: their received bytes are no longer what is delivered. */
const changed = new WeakSet<Element>();

/** Changes an inbound message before it is delivered or stored offline (mod-mam adds its XEP-0359 stanza-id). */
export function changeMessage(event: StanzaEvent, change: (stanza: Element) => void): void {
  change(event.stanza);
  changed.add(event.stanza);
}

/** The bytes to pass on for an inbound message: its received ones, unless a hook changed it. */
export function messageBytes(event: StanzaEvent): Buffer | undefined {
  return changed.has(event.stanza) ? undefined : event.raw;
}

export const modMessage = defineModule({ name: "message", doc: "Messages to local users (RFC 6121 §8.5).", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  api.hook("message/bare", (event) => toBare(api, event));

  api.hook("message/full", async (event) => {
    const session = api.sessions.get(event.to);
    if (session) {
      api.deliver(event.work, session, event.stanza, messageBytes(event));
      return true;
    }
    // §8.5.3.2.1: the resource is gone.
    const type = messageType(event.stanza);
    if (type === "chat" || type === "normal") return toBare(api, event);
    if (type === "groupchat" || !(await api.userExists(event.to.bare))) {
      await api.error(event, "service-unavailable");
    }
    return true; // headline and error: ignored
  });

  // No feature of the server itself takes messages.
  api.hook("message/host", async (event) => {
    await api.error(event, "service-unavailable");
    return true;
  });
}

/**
 * §8.5.2: a message for a user's bare JID (or for a gone resource, treated
 * alike). Synchronous for a user with a session here, most messages: each
 * promise costs a turn of the microtask queue.
 */
function toBare(api: ModuleApi, event: StanzaEvent): boolean | Promise<boolean> {
  const type = messageType(event.stanza);
  if (type === "error") return true; // §8.5.2.1.1: ignored
  // A user with a session here exists: only for the others is the store asked (and awaited).
  if (type === "groupchat" || api.sessions.of(event.to.bare).length === 0) return toAbsent(api, event, type);
  return toSessions(api, event, type);
}

async function toAbsent(api: ModuleApi, event: StanzaEvent, type: string): Promise<boolean> {
  if (type === "groupchat" || !(await api.userExists(event.to.bare))) {
    await api.error(event, "service-unavailable");
    return true;
  }
  return toSessions(api, event, type);
}

function toSessions(api: ModuleApi, event: StanzaEvent, type: string): boolean | Promise<boolean> {
  const user = event.to.bare;
  if (type === "headline") {
    // Every non-negative resource, or nobody (§8.5.2.2.1: headlines are not stored).
    for (const session of nonNegative(api, user)) api.deliver(event.work, session, event.stanza, messageBytes(event));
    return true;
  }
  const targets = chatTargets(api, user);
  for (const session of targets) api.deliver(event.work, session, event.stanza, messageBytes(event));
  return targets.length > 0 || toOffline(api, event);
}

async function toOffline(api: ModuleApi, event: StanzaEvent): Promise<boolean> {
  if (!(await api.fire("message-offline", event))) await api.error(event, "service-unavailable");
  return true;
}

/** §8.5.2.1.1: the resources a chat or normal message to a user's bare JID goes to, every one tied at the highest non-negative priority. */
export function chatTargets(api: ModuleApi, user: string): Session[] {
  const candidates = nonNegative(api, user);
  const top = Math.max(...candidates.map((s) => s.priority));
  return candidates.filter((s) => s.priority === top);
}

/** The available resources that take messages to the bare JID (a negative priority takes none). */
function nonNegative(api: ModuleApi, user: string): Session[] {
  return api.sessions.available(user).filter((s) => s.priority >= 0);
}

/** The message type; absent or unknown means normal (RFC 6121 §5.2.2). */
export function messageType(stanza: Element): string {
  const type: string | undefined = stanza.attrs.type;
  return type === "chat" || type === "groupchat" || type === "headline" || type === "error" ? type : "normal";
}
