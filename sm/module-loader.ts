// Builds the ModuleApi (sm/module-api.ts) over the sm's parts and sets up
// each enabled module on it, with its options, in list order: the order of
// their hooks' and filters' registration.
import type { Element } from "ltx";
import { STORE_LIMITS } from "../xdb-sql/store.js";
import type { ClientDelivery } from "./client-delivery.js";
import type { IqRequests } from "./iq-requests.js";
import type { DiscoTarget, Identity, Json, ModuleApi } from "./module-api.js";
import type { EnabledModule } from "./module-config.js";
import { inTurn } from "./origin.js";
import { moduleStorage } from "./module-storage.js";
import type { SessionLifecycle } from "./session-lifecycle.js";
import type { SessionStates } from "./session-state.js";
import type { SmContext } from "./sm-context.js";
import type { StanzaRouter } from "./stanza-router.js";

export interface LoaderDeps {
  readonly router: StanzaRouter;
  readonly delivery: ClientDelivery;
  readonly requests: IqRequests;
  readonly states: SessionStates;
  readonly lifecycle: SessionLifecycle;
  /** PBKDF2 iterations of the SCRAM keys modules derive (c2s.scram_iterations). */
  readonly scramIterations: number;
}

export function loadModules(ctx: SmContext, deps: LoaderDeps, modules: readonly EnabledModule[]): void {
  const { router, delivery, requests, states, lifecycle } = deps;
  const disco: Record<DiscoTarget, { features: Set<string>; identities: Identity[]; forms: Element[] }> = {
    server: { features: new Set(), identities: [], forms: [] },
    account: { features: new Set(), identities: [], forms: [] },
  };
  const shared: Omit<ModuleApi, "module" | "filter" | "sessionState"> = {
    domains: ctx.domains,
    limits: ctx.limits,
    store: ctx.store,
    storage: moduleStorage(ctx.store),
    sessions: ctx.registry,
    log: ctx.log,
    hook: (name, handler, priority) => ctx.hooks.on(name, handler, priority),
    fire: async (name, event) => ctx.hooks.fire(name, event),
    addFeature: (feature, on = "server") => void disco[on].features.add(feature),
    features: (on = "server") => [...disco[on].features].sort(),
    addIdentity: (identity, on = "server") => void disco[on].identities.push(identity),
    identities: (on = "server") => [...disco[on].identities],
    addForm: (form, on = "server") => void disco[on].forms.push(form),
    forms: (on = "server") => [...disco[on].forms],
    send: (work, stanza, raw) => router.send(work, stanza, raw),
    deliver: (work, session, stanza, raw) => delivery.deliver(work, session, stanza, raw),
    deliverStored: (work, session, batch) => delivery.deliverStored(work, session, batch),
    reply: (event, stanza) => router.reply(event, stanza),
    error: (event, condition, text) => router.error(event, condition, text),
    userExists: async (user) => ctx.registry.of(user).length > 0 || ctx.store.accountExists(user),
    components: () => [...ctx.components].sort(),
    request: (work, iq, timeoutMs) => requests.request(work, iq, timeoutMs),
    run: (user, job) => ctx.queue.run(user, () => job(inTurn(user))),
    deliveryId: (work, recipient) => {
      const id = work.origin?.deliveryId(recipient);
      return id !== undefined && Buffer.byteLength(id) <= STORE_LIMITS.origin ? id : undefined;
    },
    scramIterations: deps.scramIterations,
    endSessions: (work, user, close, keep) => lifecycle.endSessions(work, user, close, keep),
    deleteAccount: (work, user) => lifecycle.removeAccount(work, user),
  };
  for (const { definition, options } of modules) {
    const name = definition.name;
    // What names the module: its filters' log lines and its state slot.
    const api: ModuleApi = {
      ...shared,
      module: name,
      filter: (filter, priority) => delivery.addFilter(name, filter, priority),
      sessionState: <T extends Json>() => states.slot<T>(name),
    };
    definition.setup(api, options);
  }
}
