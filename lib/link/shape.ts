// Shape checks for the JSON that crosses a link (docs/protocol.md). A linked
// process may be old, buggy or hostile: every JSON body is checked before
// anything reads it, so a field of the wrong type costs its sender the link
// (or the frame), never the receiving process, nor the processes it would
// have passed the value on to.

/** A check that a parsed JSON value has the shape T. */
export type Shape<T> = (value: unknown) => value is T;

type ShapeOf<S> = S extends Shape<infer T> ? T : never;

/** A JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export const string: Shape<string> = (v): v is string => typeof v === "string";
export const boolean: Shape<boolean> = (v): v is boolean => typeof v === "boolean";
/** A finite number. */
export const number: Shape<number> = (v): v is number => typeof v === "number" && Number.isFinite(v);
/** A whole number from 0 up: counts, ids, times. */
export const count: Shape<number> = (v): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
export const port: Shape<number> = (v): v is number => count(v) && v <= 65535;

/** A string of at most `max` UTF-8 bytes, e.g. what goes into a ROUTE header field. */
export function bytesAtMost(max: number): Shape<string> {
  // A UTF-8 byte is at least a third of a UTF-16 unit, so only long strings are measured.
  return (v): v is string => typeof v === "string" && (v.length * 3 <= max || Buffer.byteLength(v) <= max);
}

export function oneOf<T extends string>(...values: readonly T[]): Shape<T> {
  return (v): v is T => typeof v === "string" && (values as readonly string[]).includes(v);
}

export function optional<T>(shape: Shape<T>): Shape<T | undefined> {
  return (v): v is T | undefined => v === undefined || shape(v);
}

export function nullable<T>(shape: Shape<T>): Shape<T | null> {
  return (v): v is T | null => v === null || shape(v);
}

export function arrayOf<T>(shape: Shape<T>): Shape<T[]> {
  return (v): v is T[] => Array.isArray(v) && v.every(shape);
}

/** Tuples laid flat in one list: each run of `shapes.length` items fits `shapes` in order. */
export function laidFlat<T>(...shapes: Shape<T>[]): Shape<T[]> {
  const width = shapes.length;
  return (v): v is T[] => {
    if (!Array.isArray(v) || v.length % width !== 0) return false;
    for (let i = 0; i < v.length; i++) if (!shapes[i % width]!(v[i])) return false;
    return true;
  };
}

/** An object used as a table: every own value fits `shape`. */
export function recordOf<T>(shape: Shape<T>): Shape<Record<string, T>> {
  return (v): v is Record<string, T> => isObject(v) && Object.values(v).every(shape);
}

/**
 * An object with these properties (others are allowed and left alone, so a
 * later version may add some). Only own properties count: a missing one is
 * undefined, never something inherited from Object.prototype.
 */
export function object<P extends Record<string, Shape<unknown>>>(props: P): Shape<{ [K in keyof P]: ShapeOf<P[K]> }> {
  const entries = Object.entries(props);
  return (v): v is { [K in keyof P]: ShapeOf<P[K]> } => isObject(v) && entries.every(([k, shape]) => shape(Object.hasOwn(v, k) ? v[k] : undefined));
}

/** Parses a JSON body and checks its shape; throws, naming `what`, when either fails. */
export function parseJson<T>(body: Buffer | string, shape: Shape<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  if (!shape(value)) throw new Error(`${what} has the wrong shape`);
  return value;
}
