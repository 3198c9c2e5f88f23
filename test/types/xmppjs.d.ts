// The part of xmpp.js (which ships no types) that the tests use.
declare module "@xmpp/xml" {
  import { Element as LtxElement } from "ltx";
  export class Element extends LtxElement {}
  export default function xml(name: string, attrs?: Record<string, string | undefined>, ...children: (Element | string)[]): Element;
}

declare module "@xmpp/client" {
  import type { Element } from "@xmpp/xml";
  export { default as xml } from "@xmpp/xml";

  export interface Client {
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    /** Milliseconds @xmpp/connection waits for a stream to open or close (2000 by default). */
    timeout: number;
    send(el: Element): Promise<void>;
    /** Writes raw text on the stream, for what no application would send. */
    write(text: string): Promise<void>;
    on(event: "stanza", cb: (el: Element) => void): void;
    /** A stream error carries its RFC 6120 condition. */
    on(event: "error", cb: (err: Error & { condition?: string }) => void): void;
    reconnect: { stop(): void; start(): void };
    streamManagement: { enabled: boolean; id: string; inbound: number; on(event: "resumed", cb: () => void): void };
    /** The transport: its `socket` is the underlying TCP/TLS socket. */
    socket: { socket: { destroy(): void; remotePort?: number } } | null;
    on(event: "online", cb: () => void): void;
    /** The socket closed (a redirect followed, a lost connection); the reconnect module retries `options.service`. */
    on(event: "disconnect", cb: () => void): void;
    /** "online" once logged in (or resumed), "disconnect" between connections, … */
    status: string;
    options: { service: string };
    iqCaller: {
      get(payload: Element, to?: string): Promise<Element>;
      set(payload: Element, to?: string): Promise<Element>;
      request(iq: Element): Promise<Element>;
    };
  }

  export function client(options: {
    service: string;
    domain: string;
    username?: string;
    password?: string;
    resource?: string;
  }): Client;
}

declare module "@xmpp/component" {
  import type { Element } from "@xmpp/xml";
  export { default as xml } from "@xmpp/xml";

  export interface Component {
    start(): Promise<unknown>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    on(event: "stanza", cb: (el: Element) => void): void;
    on(event: "error", cb: (err: Error) => void): void;
    reconnect: { stop(): void };
  }

  export function component(options: { service: string; domain: string; password: string }): Component;
}
