/**
 * FAB's projection step (Croce & Hein 2020): the smallest perturbation δ, in Linf, L2 or L1, that
 * moves a point t ∈ [0,1]^d onto the hyperplane w·z = b while keeping t + δ in the box. Each norm
 * is a one-dimensional search over sorted breakpoints:
 *  - Linf: δ_i = −s_i·min(λ, p_i), p_i the room to the box edge in the descending direction s_i = sign(w_i);
 *  - L2:   δ_i = clip(−α·w_i, −t_i, 1 − t_i) (KKT), α ≥ 0;
 *  - L1:   coordinates in order of |w_i|, largest first, each moved to its edge until the last
 *          one closes the gap (the cheapest L1 cost per unit of w·δ).
 * When the box does not let the point reach the plane, δ moves every coordinate as far as it
 * can towards it (the reference does the same). Works per row on host arrays: d is small enough
 * (3072 for CIFAR) that sorting per row each iteration costs less than the gradients — with a
 * radix sort on precomputed keys (stable-argsort.ts); closure comparators made the two
 * projections per image a sixth of a FAB step. The order, and so every bit of δ, is the one the
 * comparator sort gave (test/attacks/fab-projections-oracle.test.ts).
 */
import type { NormName } from './norms.js';
import { stableArgsort } from './stable-argsort.js';

export type FabNorm = NormName;

// Per-coordinate scratch, grown on demand: a projection allocates nothing once they fit.
let idx = new Int32Array(0);
let key = new Float64Array(0);
let slope = new Float64Array(0);
let room = new Float64Array(0);

/**
 * Sorts idx[0..m) ascending by key, stably (ties in index order): by radix on the keys' bits, or,
 * when a key is NaN or infinite, by the comparator sort the projection has always used — the same
 * comparisons on the same values, so the same order, whatever order that is.
 */
function sortByKey(m: number): void {
  for (let k = 0; k < m; k++) {
    if (Number.isFinite(key[idx[k]])) continue;
    const order = Array.from(idx.subarray(0, m)).sort((i, j) => key[i] - key[j]);
    idx.set(order);
    return;
  }
  stableArgsort(idx, m, key);
}

/**
 * The smallest p ≥ 0 with Σ_i slope_i·min(p, key_i) = c (a nondecreasing piecewise-linear
 * function, key_i the breakpoints), scanning the breakpoints in order; Infinity when even p = ∞
 * falls short. Sorts idx[0..m).
 */
function levelCrossing(m: number, c: number): number {
  sortByKey(m);
  let reached = 0; // Σ slope·breakpoint over the coordinates already at their breakpoint
  let rate = 0;
  for (let k = 0; k < m; k++) rate += slope[idx[k]];
  for (let k = 0; k < m; k++) {
    const i = idx[k];
    if (reached + rate * key[i] >= c) return (c - reached) / rate;
    reached += slope[i] * key[i];
    rate -= slope[i];
  }
  return Infinity;
}

/** δ for one point t, hyperplane (w, b); written into `out` (length d). */
export function projectOntoHalfspace(
  norm: FabNorm,
  t: Float32Array,
  w: Float32Array,
  b: number,
  out: Float32Array,
): void {
  const d = t.length;
  let c = -b;
  for (let i = 0; i < d; i++) c += w[i] * t[i];
  // reach w·z = b from the side t is on: after flipping, w·t − b = c ≥ 0 and w·δ must equal −c
  const sign = c >= 0 ? 1 : -1;
  c *= sign;
  out.fill(0);
  if (c === 0) return;
  if (idx.length < d) {
    idx = new Int32Array(d);
    key = new Float64Array(d);
    slope = new Float64Array(d);
    room = new Float64Array(d);
  }
  // room_i: how far coordinate i can move in its descending direction (down if w_i > 0, up if < 0)
  let m = 0;
  for (let i = 0; i < d; i++) {
    const ws = sign * w[i];
    if (ws === 0) continue;
    idx[m++] = i;
    room[i] = ws > 0 ? t[i] : 1 - t[i];
  }
  if (norm === 'linf' || norm === 'l2') {
    // Linf: Σ|w_i|·min(λ, room_i) = c; L2: Σ w_i²·min(α, room_i/|w_i|) = c — one search, other breakpoints and slopes
    const linf = norm === 'linf';
    for (let k = 0; k < m; k++) {
      const i = idx[k];
      const ws = sign * w[i];
      key[i] = linf ? room[i] : room[i] / Math.abs(ws);
      slope[i] = linf ? Math.abs(ws) : ws * ws;
    }
    const at = levelCrossing(m, c);
    for (let k = 0; k < m; k++) {
      const i = idx[k];
      const ws = sign * w[i];
      out[i] = -Math.sign(ws) * Math.min(linf ? at : at * Math.abs(ws), room[i]);
    }
  } else {
    // largest |w_i| first: ascending by −|w_i|
    for (let k = 0; k < m; k++) key[idx[k]] = -Math.abs(sign * w[idx[k]]);
    sortByKey(m);
    let gap = c;
    for (let k = 0; k < m; k++) {
      const i = idx[k];
      const ws = sign * w[i];
      const full = Math.abs(ws) * room[i];
      if (full >= gap) {
        out[i] = -Math.sign(ws) * (gap / Math.abs(ws));
        return;
      }
      out[i] = -Math.sign(ws) * room[i];
      gap -= full;
    }
  }
}
