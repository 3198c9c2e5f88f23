// A Store whose every method call is timed and told to an observer (the
// process's SQL metrics, lib/metrics/store-metrics.ts): one wrapper around
// the Store each process opens, rather than a line in every query.
import { performance } from "node:perf_hooks";
import type { Store } from "./store.js";

export interface StoreCallObserver {
  query(op: string, seconds: number, failed: boolean): void;
}

export function instrumentStore(store: Store, observer: StoreCallObserver): Store {
  const wrappers = new Map<PropertyKey, unknown>();
  const timed = (op: string, method: (...args: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]): unknown {
      const began = performance.now();
      const done = (failed: boolean) => observer.query(op, (performance.now() - began) / 1000, failed);
      let result: unknown;
      try {
        result = method.apply(store, args);
      } catch (err) {
        done(true);
        throw err;
      }
      if (!(result instanceof Promise)) {
        done(false);
        return result;
      }
      return result.then(
        (value: unknown) => {
          done(false);
          return value;
        },
        (err: unknown) => {
          done(true);
          throw err;
        },
      );
    };
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      let wrapper = wrappers.get(prop);
      if (!wrapper) wrappers.set(prop, (wrapper = timed(prop, value as (...args: unknown[]) => unknown)));
      return wrapper;
    },
  });
}
