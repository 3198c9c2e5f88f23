// A hand-driven link to a router (docs/protocol.md §1), for what no farm
// process sends: malformed frames, JSON of the wrong shape, forged headers.
import net from "node:net";
import { LINK_VERSION, linkProof, newNonce, type HelloBody } from "../../lib/link/auth.js";
import { FrameReader, FrameType, encodeFrame, encodeJsonFrame, type Frame } from "../../lib/link/frames.js";
import type { LinkRole } from "../../lib/link/member.js";

export class RawLink {
  readonly frames: Frame[] = [];
  closed = false;
  private waiters: (() => boolean)[] = [];

  private constructor(private readonly socket: net.Socket) {
    const reader = new FrameReader(64 * 1024 * 1024);
    socket.on("data", (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) this.frames.push(frame);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => {});
  }

  /** `localAddress`: a loopback source address (127.0.0.2, …). */
  static connect(port: number, localAddress?: string): Promise<RawLink> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => resolve(new RawLink(s)));
      s.once("error", reject);
    });
  }

  /**
   * Connects and authenticates as `name` with `secret` (a wrong one to be
   * refused); resolves with the router's answer, WELCOME or REFUSED, as JSON.
   */
  static async authenticate(
    port: number,
    opts: { name: string; role: LinkRole; secret: string; info?: Record<string, unknown>; localAddress?: string },
  ): Promise<{ link: RawLink; answer: FrameType; body: Record<string, unknown> }> {
    const link = await RawLink.connect(port, opts.localAddress);
    const hello = JSON.parse((await link.next((f) => f.type === FrameType.Hello)).body.toString()) as HelloBody;
    const nonce = newNonce();
    const proof = linkProof("component", opts.secret, hello.nonce, nonce, opts.name, opts.role);
    link.sendJson(FrameType.Auth, { v: LINK_VERSION, name: opts.name, role: opts.role, nonce, proof, info: opts.info ?? {} });
    const answer = await link.next((f) => f.type === FrameType.Welcome || f.type === FrameType.Refused);
    return { link, answer: answer.type, body: JSON.parse(answer.body.toString()) as Record<string, unknown> };
  }

  sendJson(type: FrameType, value: unknown): void {
    this.socket.write(encodeJsonFrame(type, value));
  }

  /** A frame of this type around any body, JSON or not. */
  sendBody(type: FrameType, body: string | Buffer): void {
    this.socket.write(encodeFrame(type, typeof body === "string" ? Buffer.from(body) : body));
  }

  /** Bytes as they are, frame boundaries and all. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The first frame received that passes `test`, waiting for it; throws if the link closes first. */
  async next(test: (f: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    await this.until(() => this.frames.some(test), "a frame", timeoutMs);
    const found = this.frames.find(test);
    if (!found) throw new Error("link closed before the frame came");
    return found;
  }

  /** Resolves once the router closed the link. */
  untilClosed(timeoutMs = 10_000): Promise<void> {
    return this.until(() => this.closed, "the link to close", timeoutMs);
  }

  private until(test: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = () => {
        if (!test() && !this.closed) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    this.waiters = this.waiters.filter((check) => !check());
  }
}
