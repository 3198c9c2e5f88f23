// For the fuzzers: a byte string cut into reads at arbitrary points (inside
// characters and tags included), as a socket may deliver it.
import fc from "fast-check";

export function cutIntoReads(bytes: Buffer, maxCuts = 8): fc.Arbitrary<Buffer[]> {
  return fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: maxCuts }).map((points) => {
    const at = [...new Set(points)].sort((a, b) => a - b);
    const reads: Buffer[] = [];
    let from = 0;
    for (const p of [...at, bytes.length]) {
      if (p > from) reads.push(bytes.subarray(from, p));
      from = p;
    }
    return reads;
  });
}
