// One timer for all the simulated clients of a worker: a wheel of 10 ms
// slots. A client has at most one pending wake-up; scheduling another, or
// bumping its generation, makes the earlier one a no-op. 100,000 clients
// thinking cost 100,000 small array entries, not 100,000 Timeout objects.

export interface Sleeper {
  /** Bumped to cancel the pending wake-up. */
  gen: number;
  wake(): void;
}

const SLOT_MS = 10;

export class Wheel {
  private readonly slots = new Map<number, { who: Sleeper[]; gen: number[] }>();
  private next = Math.floor(performance.now() / SLOT_MS);
  private timer: NodeJS.Timeout | null = null;
  private size = 0;

  /** Wakes `s` at `at` (performance.now() ms), unless its gen changes first. */
  at(at: number, s: Sleeper): void {
    const slot = Math.max(this.next, Math.ceil(at / SLOT_MS));
    let b = this.slots.get(slot);
    if (!b) this.slots.set(slot, (b = { who: [], gen: [] }));
    b.who.push(s);
    b.gen.push(s.gen);
    this.size++;
    if (!this.timer) this.timer = setInterval(() => this.turn(), SLOT_MS);
  }

  private turn(): void {
    const now = Math.floor(performance.now() / SLOT_MS);
    for (; this.next <= now; this.next++) {
      const b = this.slots.get(this.next);
      if (!b) continue;
      this.slots.delete(this.next);
      this.size -= b.who.length;
      for (let i = 0; i < b.who.length; i++) {
        const s = b.who[i]!;
        if (s.gen === b.gen[i]) s.wake();
      }
    }
    if (this.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.slots.clear();
    this.size = 0;
  }
}
