/**
 * Stable ascending argsort of Float64 keys by LSD radix sort on their bits: the order
 * `Array.prototype.sort` gives with the comparator `(i, j) => key[i] - key[j]` on indices listed in
 * increasing order (ties keep index order, −0 ties +0), without a comparator call per comparison —
 * FAB sorts 3072 coordinates per image twice per step. Keys must not be NaN or ±Infinity (there
 * that comparator is inconsistent, and so is the order it gives).
 */

// Scratch buffers, grown on demand and reused: a sort allocates nothing once they fit.
let hi = new Uint32Array(0);
let lo = new Uint32Array(0);
let hi2 = new Uint32Array(0);
let lo2 = new Uint32Array(0);
let tmp = new Int32Array(0);
const counts = new Uint32Array(8 * 256);
const one = new Float64Array(1);
const words = new Uint32Array(one.buffer);

/** Whether `Float64Array`'s high word comes second in its `Uint32Array` view (little-endian hosts). */
const HIGH_SECOND = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Sorts `idx` (positions 0..m−1 used) in place by `key[idx[k]]`, stably: `idx` must come in
 * increasing order for ties to keep index order, as the comparator sort's stability gives them.
 */
export function stableArgsort(idx: Int32Array, m: number, key: Float64Array): void {
  if (hi.length < m) {
    hi = new Uint32Array(m);
    lo = new Uint32Array(m);
    hi2 = new Uint32Array(m);
    lo2 = new Uint32Array(m);
    tmp = new Int32Array(m);
  }
  const [h, l] = HIGH_SECOND ? [1, 0] : [0, 1];
  counts.fill(0);
  for (let k = 0; k < m; k++) {
    one[0] = key[idx[k]] + 0; // −0 + 0 = +0: the comparator ties them
    let a = words[h];
    let b = words[l];
    // bits → unsigned order: negatives have all bits flipped, non-negatives the sign bit
    if (a & 0x80000000) {
      a = ~a >>> 0;
      b = ~b >>> 0;
    } else a = (a | 0x80000000) >>> 0;
    hi[k] = a;
    lo[k] = b;
    for (let p = 0; p < 4; p++) {
      counts[p * 256 + ((b >>> (8 * p)) & 255)]++;
      counts[(p + 4) * 256 + ((a >>> (8 * p)) & 255)]++;
    }
  }
  // hi/lo are stored by position k; carry them along with the indices
  let src = idx;
  let dst = tmp;
  let srcHi = hi;
  let srcLo = lo;
  let dstHi = hi2;
  let dstLo = lo2;
  for (let p = 0; p < 8; p++) {
    const c = counts.subarray(p * 256, (p + 1) * 256);
    if (c.some((v) => v === m)) continue; // every key has this byte: the pass would not move anything
    let sum = 0;
    for (let v = 0; v < 256; v++) {
      const n = c[v];
      c[v] = sum;
      sum += n;
    }
    const shift = 8 * (p % 4);
    const digits = p < 4 ? srcLo : srcHi;
    for (let k = 0; k < m; k++) {
      const at = c[(digits[k] >>> shift) & 255]++;
      dst[at] = src[k];
      dstHi[at] = srcHi[k];
      dstLo[at] = srcLo[k];
    }
    [src, dst] = [dst, src];
    [srcHi, dstHi] = [dstHi, srcHi];
    [srcLo, dstLo] = [dstLo, srcLo];
  }
  if (src !== idx) idx.set(src.subarray(0, m));
}
