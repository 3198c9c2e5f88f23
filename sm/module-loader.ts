// Builds the ModuleApi (sm/module-api.ts) over the sm's parts and sets up
// each module on it, in list order: the order of their hooks' registration.
import { STORE_LIMITS } from "../xdb-sql/store.js";
import type { ClientDelivery } from "./client-delivery.js";
import type { IqRequests } from "./iq-requests.js";
import type { DiscoTarget, Identity, ModuleApi, SmModule } from "./module-api.js";
import type { SmContext } from "./sm-context.js";
import type { StanzaRouter } from "./stanza-router.js";

export interface LoaderDeps {
  readonly router: StanzaRouter;
  readonly delivery: ClientDelivery;
  readonly requests: IqRequests;
}

export function loadModules(ctx: SmContext, deps: LoaderDeps, modules: readonly SmModule[]): ModuleApi {
  const { router, delivery, requests } = deps;
  const disco: Record<DiscoTarget, { features: Set<string>; identities: Identity[] }> = {
    server: { features: new Set(), identities: [] },
    account: { features: new Set(), identities: [] },
  };
  const api: ModuleApi = {
    domains: ctx.domains,
    limits: ctx.limits,
    store: ctx.store,
    sessions: ctx.registry,
    log: ctx.log,
    hook: (name, handler, priority) => ctx.hooks.on(name, handler, priority),
    fire: (name, event) => ctx.hooks.fire(name, event),
    addFeature: (feature, on = "server") => void disco[on].features.add(feature),
    features: (on = "server") => [...disco[on].features].sort(),
    addIdentity: (identity, on = "server") => void disco[on].identities.push(identity),
    identities: (on = "server") => [...disco[on].identities],
    send: (stanza, raw) => router.send(stanza, raw),
    deliver: (session, stanza, raw, stored) => delivery.deliver(session, stanza, raw, stored),
    reply: (event, stanza) => router.reply(event, stanza),
    error: (event, condition, text) => router.error(event, condition, text),
    userExists: async (user) => ctx.registry.of(user).length > 0 || ctx.store.accountExists(user),
    components: () => [...ctx.components].sort(),
    request: (iq, timeoutMs) => requests.request(iq, timeoutMs),
    run: (user, job) => ctx.queue.run(user, job),
    deliveryId: (recipient) => {
      const id = ctx.origins.current()?.deliveryId(recipient);
      return id !== undefined && Buffer.byteLength(id) <= STORE_LIMITS.origin ? id : undefined;
    },
  };
  for (const mod of modules) mod(api);
  return api;
}
