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

export type FabNorm = NormName | 'l1';

/** δ for one point t, hyperplane (w, b); written into `out` (length d). */
export function projectOntoHalfspace(norm: FabNorm, t: Float32Array, w: Float32Array, b: number, out: Float32Array): void {
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
  if (norm === 'linf') {
    // f(λ) = Σ|w_i|·min(λ, room_i): find the smallest λ with f(λ) = c
    idx.sort((i, j) => room(i) - room(j));
    let below = 0; // Σ |w_i|·room_i over coordinates already at their edge
    let slope = idx.reduce((s, i) => s + Math.abs(ws(i)), 0);
    let lambda = Infinity;
    for (const i of idx) {
      if (below + slope * room(i) >= c) {
        lambda = (c - below) / slope;
        break;
      }
      below += Math.abs(ws(i)) * room(i);
      slope -= Math.abs(ws(i));
    }
    for (const i of idx) out[i] = -Math.sign(ws(i)) * Math.min(lambda, room(i));
  } else if (norm === 'l2') {
    // g(α) = Σ w_i·clip(−α·w_i, …) = −(Σ_{free} w_i²·α + Σ_{clipped} |w_i|·room_i): find α with g(α) = −c
    const breakpoint = (i: number) => room(i) / Math.abs(ws(i));
    idx.sort((i, j) => breakpoint(i) - breakpoint(j));
    let clipped = 0;
    let free = idx.reduce((s, i) => s + ws(i) * ws(i), 0);
    let alpha = Infinity;
    for (const i of idx) {
      if (clipped + free * breakpoint(i) >= c) {
        alpha = (c - clipped) / free;
        break;
      }
      clipped += Math.abs(ws(i)) * room(i);
      free -= ws(i) * ws(i);
    }
    for (const i of idx) out[i] = Number.isFinite(alpha) ? -Math.sign(ws(i)) * Math.min(alpha * Math.abs(ws(i)), room(i)) : toEdge(i);
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
