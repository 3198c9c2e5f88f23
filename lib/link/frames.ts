// Link-layer framing (docs/protocol.md §1.1, §1.4): u32 length, u8 type, body.

export enum FrameType {
  Hello = 0x01,
  Auth = 0x02,
  Welcome = 0x03,
  Refused = 0x04,
  Control = 0x05,
  Route = 0x10,
}

export const DEFAULT_MAX_FRAME = 1024 * 1024;

/**
 * What a frame may need beyond the stanza it carries: length, type, routing
 * header and session header (docs/protocol.md §1.1). link.max_frame must
 * leave this much room over the largest stanza a process may send.
 */
export const HEADER_ALLOWANCE = 64 * 1024;

/** The length field of the ROUTE frame that would carry `payloadLength` bytes (type, header, payload). */
export function routeLength(to: string, from: string, key: string, payloadLength: number): number {
  return 1 + 1 + Buffer.byteLength(to) + 1 + Buffer.byteLength(from) + 2 + Buffer.byteLength(key) + payloadLength;
}

export function encodeFrame(type: FrameType, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out.writeUInt8(type, 4);
  body.copy(out, 5);
  return out;
}

export function encodeJsonFrame(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value), "utf8"));
}

export function encodeRoute(to: string, from: string, key: string, payload: Buffer): Buffer {
  const toB = Buffer.from(to, "utf8");
  const fromB = Buffer.from(from, "utf8");
  const keyB = Buffer.from(key, "utf8");
  if (toB.length > 255 || fromB.length > 255 || keyB.length > 65535) {
    throw new Error("route address too long");
  }
  const headerLen = 1 + toB.length + 1 + fromB.length + 2 + keyB.length;
  const out = Buffer.allocUnsafe(5 + headerLen + payload.length);
  out.writeUInt32BE(1 + headerLen + payload.length, 0);
  out.writeUInt8(FrameType.Route, 4);
  let o = 5;
  out.writeUInt8(toB.length, o++);
  o += toB.copy(out, o);
  out.writeUInt8(fromB.length, o++);
  o += fromB.copy(out, o);
  out.writeUInt16BE(keyB.length, o);
  o += 2;
  o += keyB.copy(out, o);
  payload.copy(out, o);
  return out;
}

export interface RouteHeader {
  to: string;
  from: string;
  key: string;
  /** Offset of the payload within the frame body. */
  payloadOffset: number;
}

/** Reads a ROUTE body's header; throws on a truncated header. */
export function decodeRouteHeader(body: Buffer): RouteHeader {
  let o = 0;
  const need = (n: number) => {
    if (o + n > body.length) throw new Error("truncated route header");
  };
  need(1);
  const toLen = body.readUInt8(o++);
  need(toLen + 1);
  const to = body.toString("utf8", o, o + toLen);
  o += toLen;
  const fromLen = body.readUInt8(o++);
  need(fromLen + 2);
  const from = body.toString("utf8", o, o + fromLen);
  o += fromLen;
  const keyLen = body.readUInt16BE(o);
  o += 2;
  need(keyLen);
  const key = body.toString("utf8", o, o + keyLen);
  o += keyLen;
  return { to, from, key, payloadOffset: o };
}

export interface Frame {
  type: FrameType;
  body: Buffer;
  /** The whole frame as received, length prefix included, for forwarding untouched. */
  raw: Buffer;
}

/** Splits a byte stream into frames; throws on a frame over the size limit. */
export class FrameReader {
  private pending: Buffer | null = null;

  /** `maxFrame` may change between chunks: a router reads a smaller frame before a link authenticates. */
  constructor(public maxFrame = DEFAULT_MAX_FRAME) {}

  *push(chunk: Buffer): Generator<Frame> {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let o = 0;
    while (buf.length - o >= 4) {
      const len = buf.readUInt32BE(o);
      if (len === 0 || len > this.maxFrame) throw new Error(`frame length ${len} out of bounds`);
      if (buf.length - o - 4 < len) break;
      const raw = buf.subarray(o, o + 4 + len);
      const type = raw.readUInt8(4);
      if (!(type in FrameType)) throw new Error(`unknown frame type ${type}`);
      yield { type, body: raw.subarray(5), raw };
      o += 4 + len;
    }
    if (o < buf.length) this.pending = Buffer.from(buf.subarray(o));
    buf = Buffer.alloc(0);
  }
}
