// The iqs modules send with ModuleApi.request() and wait on. The answer
// comes back, like any stanza for the asker's JID, to this sm (the one
// owning the asker) and is taken by the stanza router before any hook sees
// it; one from another JID than the one asked, or for another asker, is not
// taken.
import { randomBytes } from "node:crypto";
import { clone, type Element } from "ltx";
import { parseJid } from "../lib/jid.js";
import { conditionOf, isError } from "../lib/stanza-error.js";
import type { StanzaEvent } from "./hooks.js";
import type { Work } from "./origin.js";
import type { SmContext } from "./sm-context.js";
import { IqRequestError } from "./stanza.js";

/** How long request() waits for an answer by default. */
const REQUEST_TIMEOUT_MS = 10_000;

/** An iq sent with request(), waiting for its answer. */
interface PendingRequest {
  /** The request's 'to', which must answer, and its 'from', which the answer must be for. */
  readonly peer: string;
  readonly asker: string;
  readonly resolve: (answer: Element) => void;
  readonly reject: (err: IqRequestError) => void;
  readonly timer: NodeJS.Timeout;
}

export class IqRequests {
  /** The requests that wait for an answer, by id. */
  private readonly pending = new Map<string, PendingRequest>();

  constructor(
    private readonly ctx: SmContext,
    /** Routes a stanza (the stanza router's send). */
    private readonly send: (work: Work, stanza: Element) => Promise<void>,
  ) {}

  /** Sends an iq get/set from a local bare JID or a served domain and waits for its answer. */
  request(work: Work, iq: Element, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Element> {
    const type: string | undefined = iq.attrs.type;
    const from = parseJid(iq.attrs.from ?? "");
    const to = parseJid(iq.attrs.to ?? "");
    if (iq.name !== "iq" || (type !== "get" && type !== "set") || !from || from.resource || !to || !this.ctx.domains.has(from.domain)) {
      return Promise.reject(new Error("request() takes an iq get or set from a served bare JID or domain, with a 'to'"));
    }
    if (this.ctx.closed) return Promise.reject(new IqRequestError("shutdown"));
    const stanza = clone(iq);
    const id: string = (stanza.attrs.id ||= `${this.ctx.name}-${randomBytes(9).toString("base64url")}`);
    if (this.pending.has(id)) return Promise.reject(new Error(`an iq with id ${id} is already waiting`));
    return new Promise<Element>((resolve, reject) => {
      const pending: PendingRequest = {
        peer: to.full,
        asker: from.full,
        resolve,
        reject,
        timer: setTimeout(() => this.settle(id, pending, new IqRequestError("timeout")), timeoutMs).unref(),
      };
      this.pending.set(id, pending);
      this.send(work, stanza).catch((err: unknown) => {
        this.ctx.log.warn({ err, to: to.full }, "request not sent");
        this.settle(id, pending, new IqRequestError("internal-server-error"));
      });
    });
  }

  /** Whether an iq result or error answers a request(); if so, settles it. */
  answered(event: StanzaEvent): boolean {
    const { stanza } = event;
    const id: string = stanza.attrs.id ?? "";
    const pending = this.pending.get(id);
    if (!pending || event.from.full !== pending.peer || event.to.full !== pending.asker) return false;
    const failed = isError(stanza) ? new IqRequestError(conditionOf(stanza) ?? "undefined-condition", stanza) : null;
    this.settle(id, pending, failed ?? stanza);
    return true;
  }

  /** The sm shuts down: every request fails. */
  close(): void {
    for (const [id, pending] of this.pending) this.settle(id, pending, new IqRequestError("shutdown"));
  }

  /** Ends a request with its answer or failure; once, whatever comes after. */
  private settle(id: string, pending: PendingRequest, outcome: Element | IqRequestError): void {
    if (this.pending.get(id) !== pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (outcome instanceof IqRequestError) pending.reject(outcome);
    else pending.resolve(outcome);
  }
}
