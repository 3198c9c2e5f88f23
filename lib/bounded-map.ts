// Maps that a client can grow, kept small: entries expire, and the oldest go
// once a maximum is reached. A Map keeps insertion order, so re-setting an
// entry makes it the newest and the oldest are always in front.

/** Drops the expired entries of a map whose entries all live as long, so the oldest are in front. */
export function expire(map: Map<string, { until: number }>, now: number): void {
  // Stops at the first live entry; lookups check the expiry again, should the clock have jumped.
  for (const [name, entry] of map) {
    if (entry.until > now) break;
    map.delete(name);
  }
}

/** Sets `name` as the newest entry, dropping the oldest beyond `max`. */
export function remember<T>(map: Map<string, T>, name: string, entry: T, max: number): void {
  map.delete(name);
  map.set(name, entry);
  if (map.size > max) map.delete(map.keys().next().value!);
}
