// Windows of a result read without a bound LIMIT or OFFSET. SQLite (3.53,
// as better-sqlite3 ships it) plans a statement with the value bound to its
// LIMIT, so every new binding makes the next step prepare the statement
// again: at each login the sm's offline page query spent some 50 µs
// preparing itself for a read of 3. A statement without them is read row
// by row instead, and left (reset) as soon as the window is full.

/** The first `n` rows of a statement's iterate(). */
export function firstRows<R>(rows: IterableIterator<R>, n: number): R[] {
  const out: R[] = [];
  // An iterator not run to its end keeps the connection busy until it is returned.
  if (n <= 0) {
    rows.return?.();
    return out;
  }
  for (const row of rows) {
    out.push(row);
    if (out.length >= n) break;
  }
  return out;
}

/** The rows of a statement's iterate() after its first `n`. */
export function rowsAfter<R>(rows: IterableIterator<R>, n: number): R[] {
  const out: R[] = [];
  let seen = 0;
  for (const row of rows) if (seen++ >= n) out.push(row);
  return out;
}
