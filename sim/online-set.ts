// Which users are online, known to every worker: each adds its own users as
// they send presence, and learns the others' from the parent within a
// fraction of a second. Add, remove and a random pick are O(1).

export class OnlineSet {
  private readonly where: Int32Array;
  private readonly list: Int32Array;
  size = 0;

  /** Users are 0 … capacity-1 (offsets from users.first). */
  constructor(readonly capacity: number) {
    this.where = new Int32Array(capacity).fill(-1);
    this.list = new Int32Array(capacity);
  }

  has(k: number): boolean {
    return this.where[k]! >= 0;
  }

  add(k: number): void {
    if (k < 0 || k >= this.capacity || this.where[k]! >= 0) return;
    this.where[k] = this.size;
    this.list[this.size++] = k;
  }

  delete(k: number): void {
    const i = this.where[k] ?? -1;
    if (i < 0) return;
    const last = this.list[--this.size]!;
    this.list[i] = last;
    this.where[last] = i;
    this.where[k] = -1;
  }

  /** A random online user other than `except`, or -1. */
  pick(random: () => number, except: number): number {
    if (this.size === 0 || (this.size === 1 && this.has(except))) return -1;
    for (;;) {
      const k = this.list[Math.floor(random() * this.size)]!;
      if (k !== except) return k;
    }
  }

  /** A random user not online (of all `capacity` accounts), or -1 after a few tries. */
  pickOffline(random: () => number, except: number): number {
    if (this.size >= this.capacity) return -1;
    for (let tries = 0; tries < 32; tries++) {
      const k = Math.floor(random() * this.capacity);
      if (k !== except && !this.has(k)) return k;
    }
    return -1;
  }
}
