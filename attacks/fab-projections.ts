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
 * (3072 for CIFAR) that sorting per row each iteration costs far less than the gradients.
 */
import type { NormName } from './norms.js';

export type FabNorm = NormName;

/**
 * The smallest p ≥ 0 with Σ_i slope_i·min(p, breakpoint_i) = c (a nondecreasing piecewise-linear
 * function), scanning the breakpoints in order; Infinity when even p = ∞ falls short.
 */
function levelCrossing(
  idx: number[],
  breakpoint: (i: number) => number,
  slope: (i: number) => number,
  c: number,
): number {
  idx.sort((i, j) => breakpoint(i) - breakpoint(j));
  let reached = 0; // Σ slope·breakpoint over the coordinates already at their breakpoint
  let rate = idx.reduce((s, i) => s + slope(i), 0);
  for (const i of idx) {
    if (reached + rate * breakpoint(i) >= c) return (c - reached) / rate;
    reached += slope(i) * breakpoint(i);
    rate -= slope(i);
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
  const ws = (i: number) => sign * w[i];
  // room_i: how far coordinate i can move in its descending direction (down if w_i > 0, up if < 0)
  const room = (i: number) => (ws(i) > 0 ? t[i] : 1 - t[i]);
  const idx: number[] = [];
  for (let i = 0; i < d; i++) if (ws(i) !== 0) idx.push(i);
  const toEdge = (i: number) => -Math.sign(ws(i)) * room(i);
  if (norm === 'linf' || norm === 'l2') {
    // Linf: Σ|w_i|·min(λ, room_i) = c; L2: Σ w_i²·min(α, room_i/|w_i|) = c — one search, other breakpoints and slopes
    const linf = norm === 'linf';
    const at = levelCrossing(
      idx,
      (i) => (linf ? room(i) : room(i) / Math.abs(ws(i))),
      (i) => (linf ? Math.abs(ws(i)) : ws(i) * ws(i)),
      c,
    );
    for (const i of idx)
      out[i] = -Math.sign(ws(i)) * Math.min(linf ? at : at * Math.abs(ws(i)), room(i));
  } else {
    idx.sort((i, j) => Math.abs(ws(j)) - Math.abs(ws(i)));
    let gap = c;
    for (const i of idx) {
      const full = Math.abs(ws(i)) * room(i);
      if (full >= gap) {
        out[i] = -Math.sign(ws(i)) * (gap / Math.abs(ws(i)));
        return;
      }
      out[i] = toEdge(i);
      gap -= full;
    }
  }
}
