// Acknowledgements gathered for the rest of the event-loop turn, one frame
// per peer (and per `perFrame` entries, so that a frame's JSON meta stays
// within the 64 KiB a session payload's meta may have): a busy peer gets a
// frame a turn, not one per stanza (docs/protocol.md §2.5).

export class AckBatch<T> {
  /** Per peer, the frames gathered, the last one filling, with its entry count. */
  private readonly byPeer = new Map<string, { item: T; n: number }[]>();
  private scheduled = false;

  constructor(
    private readonly perFrame: number,
    private readonly create: () => T,
    private readonly send: (peer: string, item: T) => void,
  ) {}

  /** The frame being filled for `peer`, counting one more entry in it. */
  frame(peer: string): T {
    let frames = this.byPeer.get(peer);
    if (!frames) this.byPeer.set(peer, (frames = []));
    let last = frames[frames.length - 1];
    if (!last || last.n >= this.perFrame) frames.push((last = { item: this.create(), n: 0 }));
    last.n++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return last.item;
  }

  private flush(): void {
    this.scheduled = false;
    const byPeer = [...this.byPeer];
    this.byPeer.clear();
    for (const [peer, frames] of byPeer) for (const { item } of frames) this.send(peer, item);
  }
}
