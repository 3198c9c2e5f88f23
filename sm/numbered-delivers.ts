// The DELIVERs one front end has not acknowledged, by their `num` (protocol
// §2.5): numbers go out one more each, and come back, mostly in order, as
// ranges. They wait in a ring indexed by number, from the oldest still
// waiting to the next to give, not in a Map. A long-lived Map that takes
// entries at one end and loses them at the other is rebuilt by V8 every few
// dozen; the tables it leaves in the old generation seem to keep the young
// DELIVERs they held (and their buffers) alive until a full collection:
// with a Map here the sm's scavenges promoted three times the bytes they
// do with the ring (docs/bench.md). A ring, reused, lets go of what it drops.

/** A front end's DELIVERs are numbered from the time (ms) their numbering began, times this (protocol §2.5). */
const NUMS_PER_MS = 1024;
/** Slots a ring starts with; it doubles while the oldest waiting DELIVER holds more behind it. */
const FIRST_CAPACITY = 64;
/** A ring larger than this (grown behind a DELIVER that waited long) goes back to its first size once nothing waits. */
const KEPT_CAPACITY = 4096;

export class NumberedDelivers<T> {
  /** The number of offset 0: offsets stay small integers, whatever the numbers. */
  private readonly start = Date.now() * NUMS_PER_MS;
  private slots: (T | undefined)[] = new Array<T | undefined>(FIRST_CAPACITY).fill(undefined);
  /** Offsets: the oldest that may wait, and the next to give. */
  private head = 0;
  private next = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Gives the next number; its DELIVER is add()ed once sent, or the number stays unused. */
  take(): number {
    // Numbers given and never held (their frame was too large) are passed over.
    if (this.count === 0) this.head = this.next;
    if (this.next - this.head === this.slots.length) this.grow();
    return this.start + this.next++;
  }

  /** Keeps `value` under `num`, a number take() gave and nothing holds. */
  add(num: number, value: T): void {
    const at = num - this.start;
    this.slots[at & (this.slots.length - 1)] = value;
    this.count++;
    // The oldest may have moved past this number while it was not held yet.
    if (at < this.head) this.head = at;
  }

  /** Forgets `num`; what it held, if anything. */
  remove(num: number): T | undefined {
    const at = num - this.start;
    if (!(at >= this.head && at < this.next)) return undefined;
    const i = at & (this.slots.length - 1);
    const value = this.slots[i];
    if (value === undefined) return undefined;
    this.slots[i] = undefined;
    this.count--;
    if (this.count === 0 && this.slots.length > KEPT_CAPACITY) {
      this.slots = new Array<T | undefined>(FIRST_CAPACITY).fill(undefined);
      this.head = this.next;
      return value;
    }
    // The oldest gone: the ring's start moves up to the next that waits.
    const mask = this.slots.length - 1;
    while (this.head < this.next && this.slots[this.head & mask] === undefined) this.head++;
    return value;
  }

  /** Forgets every number from `from` to `to` (inclusive) that holds something, handing each to `each`. */
  removeRange(from: number, to: number, each: (value: T) => void): void {
    // Clamped to what may wait, so that any range costs at most the ring's length.
    const first = Math.max(from - this.start, this.head);
    const last = Math.min(to - this.start, this.next - 1);
    for (let at = first; at <= last; at++) {
      const value = this.remove(this.start + at);
      if (value !== undefined) each(value);
    }
  }

  /** What waits, oldest first, with its number. */
  *entries(): IterableIterator<[number, T]> {
    const mask = this.slots.length - 1;
    for (let at = this.head; at < this.next; at++) {
      const value = this.slots[at & mask];
      if (value !== undefined) yield [this.start + at, value];
    }
  }

  private grow(): void {
    const old = this.slots;
    const mask = old.length - 1;
    const slots = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let at = this.head; at < this.next; at++) slots[at & (slots.length - 1)] = old[at & mask];
    // The old ring may linger in the old generation before it is collected: it points at nothing meanwhile.
    old.fill(undefined);
    this.slots = slots;
  }
}
