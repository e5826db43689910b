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
let tmp = new Int32Array(0);
const counts = new Uint32Array(8 * 256);
const one = new Float64Array(1);
const words = new Uint32Array(one.buffer);

/** Whether `Float64Array`'s high word comes second in its `Uint32Array` view (little-endian hosts). */
const HIGH_SECOND = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Sorts `idx` (positions 0..m−1 used; entries index `key`) in place by `key[idx[k]]`, stably:
 * `idx` must come in increasing order for ties to keep index order, as the comparator sort's
 * stability gives them.
 */
export function stableArgsort(idx: Int32Array, m: number, key: Float64Array): void {
  if (hi.length < key.length) {
    hi = new Uint32Array(key.length);
    lo = new Uint32Array(key.length);
  }
  if (tmp.length < m) tmp = new Int32Array(m);
  const [h, l] = HIGH_SECOND ? [1, 0] : [0, 1];
  counts.fill(0);
  for (let k = 0; k < m; k++) {
    const i = idx[k];
    one[0] = key[i] + 0; // −0 + 0 = +0: the comparator ties them
    let a = words[h];
    let b = words[l];
    // bits → unsigned order: negatives have all bits flipped, non-negatives the sign bit
    if (a & 0x80000000) {
      a = ~a >>> 0;
      b = ~b >>> 0;
    } else a = (a | 0x80000000) >>> 0;
    hi[i] = a;
    lo[i] = b;
    for (let p = 0; p < 4; p++) {
      counts[p * 256 + ((b >>> (8 * p)) & 255)]++;
      counts[(p + 4) * 256 + ((a >>> (8 * p)) & 255)]++;
    }
  }
  let src: Int32Array = idx;
  let dst: Int32Array = tmp;
  for (let p = 0; p < 8; p++) {
    const base = p * 256;
    let all = false; // every key has this byte: the pass would not move anything
    for (let v = 0; v < 256 && !all; v++) all = counts[base + v] === m;
    if (all) continue;
    let sum = 0;
    for (let v = 0; v < 256; v++) {
      const n = counts[base + v];
      counts[base + v] = sum;
      sum += n;
    }
    const shift = 8 * (p % 4);
    const digits = p < 4 ? lo : hi;
    for (let k = 0; k < m; k++) {
      const i = src[k];
      dst[counts[base + ((digits[i] >>> shift) & 255)]++] = i;
    }
    [src, dst] = [dst, src];
  }
  if (src !== idx) idx.set(src.subarray(0, m));
}
