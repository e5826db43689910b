/**
 * FAB's projection: the smallest Lp perturbation that puts a point of the box on a hyperplane
 * while staying in the box. Checked against random feasible points: none may be closer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { projectOntoHalfspace, type FabNorm } from '../../attacks/fab-projections.js';
import { Rng } from '../../util/rng.js';

const norm = (p: FabNorm, v: ArrayLike<number>) => {
  const a = Array.from(v, Math.abs);
  return p === 'linf'
    ? Math.max(...a)
    : p === 'l2'
      ? Math.hypot(...a)
      : a.reduce((s, x) => s + x, 0);
};

describe('projectOntoHalfspace', () => {
  for (const p of ['linf', 'l2', 'l1'] as const) {
    it(`${p}: lands on the plane inside the box, and no feasible point is closer (property)`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 2, max: 4 }),
          fc.integer({ min: 0, max: 1e6 }),
          fc.double({ min: -1, max: 1, noNaN: true }),
          (d, seed, shift) => {
            const rng = new Rng(seed);
            const t = Float32Array.from({ length: d }, () => rng.next());
            const w = Float32Array.from({ length: d }, () => rng.next() * 2 - 1);
            const wt = t.reduce((s, v, i) => s + v * w[i], 0);
            const b = wt + shift;
            const out = new Float32Array(d);
            projectOntoHalfspace(p, t, w, b, out);
            const z = Array.from(t, (v, i) => v + out[i]);
            expect(z.every((v) => v >= -1e-6 && v <= 1 + 1e-6)).toBe(true);
            // reachable inside the box? the extreme corners in both directions say
            const lo = w.reduce((s, wi) => s + Math.min(0, wi), 0);
            const hi = w.reduce((s, wi) => s + Math.max(0, wi), 0);
            if (b < lo || b > hi) return; // unreachable: δ moves as far as it can, checked by the reference comparison
            expect(Math.abs(z.reduce((s, v, i) => s + v * w[i], 0) - b)).toBeLessThan(1e-5);
            // random points of the box moved onto the plane along a random coordinate: never closer
            const size = norm(p, out);
            for (let k = 0; k < 300; k++) {
              const q = Array.from({ length: d }, () => rng.next());
              const j = rng.int(d);
              if (Math.abs(w[j]) < 1e-3) continue;
              q[j] += (b - q.reduce((s, v, i) => s + v * w[i], 0)) / w[j];
              if (q[j] < 0 || q[j] > 1) continue;
              expect(
                norm(
                  p,
                  q.map((v, i) => v - t[i]),
                ),
              ).toBeGreaterThanOrEqual(size - 1e-5);
            }
          },
        ),
        { numRuns: 200, seed: 7 },
      );
    });
  }

  it('a point already on the plane does not move', () => {
    const out = new Float32Array(2).fill(9);
    projectOntoHalfspace('l2', Float32Array.of(0.5, 0.5), Float32Array.of(1, 1), 1, out);
    expect(Array.from(out)).toEqual([0, 0]);
  });
});
