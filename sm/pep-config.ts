// PEP node configuration (XEP-0060 §16.4.4 fields, XEP-0163 §5 defaults):
// the data forms it travels in, publish-options preconditions (XEP-0060
// §7.1.5), and who may see a node.
import { Element } from "ltx";
import type { Subscription } from "../xdb-sql/store.js";
import { hasFrom } from "./subscription.js";

export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_EVENT = `${NS_PUBSUB}#event`;
export const NS_OWNER = `${NS_PUBSUB}#owner`;
export const NS_ERRORS = `${NS_PUBSUB}#errors`;
const NS_DATA = "jabber:x:data";
const NODE_CONFIG = `${NS_PUBSUB}#node_config`;

export type NodeConfig = Record<string, string>;

const ACCESS_MODELS = ["presence", "open", "roster", "whitelist"] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];

interface FieldSpec {
  type: "list-single" | "text-single" | "boolean";
  label: string;
  options?: readonly string[];
  /** The value as kept, or null when it is not acceptable. */
  normalize(value: string): string | null;
}

/** A positive integer, or "max": what the node may keep, before the sm's cap (sm.max_pep_items). */
const normalizeMaxItems = (v: string): string | null => (v === "max" ? v : /^\d+$/.test(v) && Number(v) >= 1 ? String(Number(v)) : null);

const oneOf = (options: readonly string[]) => (value: string) => (options.includes(value) ? value : null);

/**
 * The fields this module acts on; others in a stored config (an import
 * keeps them all) are kept as they are and ignored.
 */
const FIELDS: Record<string, FieldSpec> = {
  "pubsub#access_model": {
    type: "list-single",
    label: "Who may retrieve items and receive notifications",
    options: ACCESS_MODELS,
    normalize: oneOf(ACCESS_MODELS),
  },
  "pubsub#max_items": {
    type: "text-single",
    label: 'Items to keep (a number, or "max" for as many as the server allows)',
    normalize: normalizeMaxItems,
  },
  "pubsub#persist_items": {
    type: "boolean",
    label: "Keep items",
    normalize: (v) => (v === "1" || v === "true" ? "true" : v === "0" || v === "false" ? "false" : null),
  },
  "pubsub#send_last_published_item": {
    type: "list-single",
    label: "When to send the last published item",
    options: ["never", "on_sub", "on_sub_and_presence"],
    normalize: oneOf(["never", "on_sub", "on_sub_and_presence"]),
  },
};

/** XEP-0163 §5 and Prosody's defaults, the config a node auto-created without options gets. */
export const DEFAULT_CONFIG: Readonly<NodeConfig> = {
  "pubsub#access_model": "presence",
  "pubsub#max_items": "1",
  "pubsub#persist_items": "true",
  "pubsub#send_last_published_item": "on_sub_and_presence",
};

/**
 * The known fields of a stored config, normalized (an imported one may say
 * "1" for true), with the defaults for what it does not say or says wrongly;
 * an access model this module does not serve (Prosody's "authorize") is
 * taken as the strictest, whitelist.
 */
export function effective(config: NodeConfig): NodeConfig {
  const out: NodeConfig = { ...DEFAULT_CONFIG };
  for (const [name, spec] of Object.entries(FIELDS)) {
    if (!Object.hasOwn(config, name)) continue;
    const value = spec.normalize(config[name]!.trim());
    if (value !== null) out[name] = value;
    else if (name === "pubsub#access_model") out[name] = "whitelist";
  }
  return out;
}

export function accessModel(config: NodeConfig): AccessModel {
  return effective(config)["pubsub#access_model"] as AccessModel;
}

/** The items a node keeps: its max_items, at most `cap` (sm.max_pep_items), which "max" stands for. */
export function maxItems(config: NodeConfig, cap: number): number {
  const value = effective(config)["pubsub#max_items"]!;
  return value === "max" ? cap : Math.min(cap, Number(value));
}

/** Whether a node keeps its items; one that does not only notifies them (XEP-0060 §16.4.4). */
export function persistsItems(config: NodeConfig): boolean {
  return effective(config)["pubsub#persist_items"] === "true";
}

export function sendsLastItem(config: NodeConfig): boolean {
  return effective(config)["pubsub#send_last_published_item"] !== "never";
}

/** The fields of a submitted data form, FORM_TYPE left out; null when it is not a form. */
export function formFields(x: Element | undefined): NodeConfig | null {
  if (!x || x.getNS() !== NS_DATA) return null;
  // fromEntries makes own properties whatever the names, "__proto__" too.
  return Object.fromEntries(
    x
      .getChildren("field")
      .filter((f) => f.attrs.var && f.attrs.var !== "FORM_TYPE")
      .map((f) => [f.attrs.var as string, f.getChildren("value").map((v) => v.getText()).join("\n")]),
  );
}

/**
 * The known fields of a submitted form, normalized; unknown fields are left
 * out (best effort, as Prosody does). A string says which value is not
 * acceptable: a max_items over `cap` (sm.max_pep_items) is not, as in Prosody.
 */
export function knownFields(fields: NodeConfig, cap: number): NodeConfig | string {
  const known: NodeConfig = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!Object.hasOwn(FIELDS, name)) continue;
    const spec = FIELDS[name]!;
    const normalized = spec.normalize(value.trim());
    if (normalized === null || (name === "pubsub#max_items" && Number(normalized) > cap)) return `${name} cannot be "${value}"`;
    known[name] = normalized;
  }
  return known;
}

/** Whether a submitted form asks for more items than a node may keep (`cap`, sm.max_pep_items). */
export function overCap(fields: NodeConfig, cap: number): boolean {
  const value = Object.hasOwn(fields, "pubsub#max_items") ? normalizeMaxItems(fields["pubsub#max_items"]!.trim()) : null;
  return value !== null && value !== "max" && Number(value) > cap;
}

/**
 * Publish-options against an existing node's config (XEP-0060 §7.1.5): the
 * config to keep (max_items raised if the options ask for more), or null
 * when a precondition is not met.
 */
export function meetPreconditions(config: NodeConfig, options: NodeConfig, cap: number): NodeConfig | null {
  const current = effective(config);
  let next = config;
  for (const [name, value] of Object.entries(options)) {
    if (current[name] === value) continue;
    if (name === "pubsub#max_items" && maxItems(options, cap) >= maxItems(config, cap)) {
      next = { ...next, [name]: value };
      continue;
    }
    return null;
  }
  return next;
}

/** The owner's configuration form of a node (XEP-0060 §8.2). */
export function configForm(config: NodeConfig): Element {
  const x = new Element("x", { xmlns: NS_DATA, type: "form" });
  x.c("field", { var: "FORM_TYPE", type: "hidden" }).c("value").t(NODE_CONFIG);
  const current = effective(config);
  for (const [name, spec] of Object.entries(FIELDS)) {
    const field = x.c("field", { var: name, type: spec.type, label: spec.label });
    for (const option of spec.options ?? []) field.c("option").c("value").t(option);
    field.c("value").t(spec.type === "boolean" ? (current[name] === "true" ? "1" : "0") : current[name]!);
  }
  return x;
}

/**
 * Whether an entity may retrieve a node's items and get its notifications:
 * the owner always; for presence and roster (treated alike), a contact the
 * owner's roster gives a subscription from (XEP-0060 §4.5); anyone for open.
 */
export function mayAccess(config: NodeConfig, isOwner: boolean, subscription: Subscription | undefined): boolean {
  if (isOwner) return true;
  switch (accessModel(config)) {
    case "open":
      return true;
    case "presence":
    case "roster":
      return subscription !== undefined && hasFrom(subscription);
    case "whitelist":
      return false;
  }
}
