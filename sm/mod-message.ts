// RFC 6121 §8.5: delivering messages to local users.
import type { StanzaEvent } from "./hooks.js";
import { defineModule, type ModuleApi } from "./module-api.js";

export const modMessage = defineModule({ name: "message", doc: "Messages to local users (RFC 6121 §8.5).", enabled: "core", options: {}, setup });

function setup(api: ModuleApi): void {
  api.hook("message/bare", (event) => toBare(api, event));

  api.hook("message/full", async (event) => {
    const session = api.sessions.get(event.to);
    if (session) {
      api.deliver(session, event.stanza, event.raw);
      return true;
    }
    // §8.5.3.2.1: the resource is gone.
    const type = typeOf(event);
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

/** §8.5.2: a message for a user's bare JID (or for a gone resource, treated alike). */
async function toBare(api: ModuleApi, event: StanzaEvent): Promise<boolean> {
  const type = typeOf(event);
  if (type === "error") return true; // §8.5.2.1.1: ignored
  const user = event.to.bare;
  if (type === "groupchat" || !(await api.userExists(user))) {
    await api.error(event, "service-unavailable");
    return true;
  }
  const candidates = api.sessions.available(user).filter((s) => s.priority >= 0);
  if (type === "headline") {
    // Every non-negative resource, or nobody (§8.5.2.2.1: headlines are not stored).
    for (const session of candidates) api.deliver(session, event.stanza, event.raw);
    return true;
  }
  // chat and normal: every resource tied at the highest priority.
  const top = Math.max(...candidates.map((s) => s.priority));
  const targets = candidates.filter((s) => s.priority === top);
  for (const session of targets) api.deliver(session, event.stanza, event.raw);
  if (targets.length === 0 && !(await api.fire("message-offline", event))) {
    await api.error(event, "service-unavailable");
  }
  return true;
}

/** The message type; absent or unknown means normal (RFC 6121 §5.2.2). */
function typeOf(event: StanzaEvent): string {
  const type: string | undefined = event.stanza.attrs.type;
  return type === "chat" || type === "groupchat" || type === "headline" || type === "error" ? type : "normal";
}
