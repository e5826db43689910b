/** The L1 threat model: the projection onto the ball ∩ box, the sparse step, L1-APGD's schedule. */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { l1, projectL1, sparseSign } from '../../attacks/norms.js';
import { largeEpsIterations } from '../../attacks/apgd-l1.js';
import { apgd, apgdTargeted, fab, makeAttack, square } from '../../attacks/index.js';
import { linearModel, randomBatch, tinyConvNet } from './models.js';
import { SUITE_THREADS } from '../helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

/**
 * The projection of one row in float64 by its definition, independently of the code under test:
 * d_i = sign(δ_i)·min(max(|δ_i| − λ, 0), cap_i), with the L1 mass m(λ) evaluated at every
 * breakpoint (|δ_i| and |δ_i| − cap_i), and λ read off the linear piece where m crosses eps.
 */
function projectRow(delta: number[], eps: number, cap: number[]): number[] {
  const a = delta.map(Math.abs);
  const mass = (lambda: number) =>
    a.reduce((s, v, i) => s + Math.min(Math.max(v - lambda, 0), cap[i]), 0);
  let lambda = 0;
  if (mass(0) > eps) {
    const points = [
      ...new Set([0, ...a, ...a.map((v, i) => v - cap[i])].filter((p) => p >= 0)),
    ].sort((p, q) => p - q);
    // m is nonincreasing: find consecutive breakpoints p < q with m(p) > eps ≥ m(q)
    for (let k = 0; k + 1 < points.length; k++) {
      const [p, q] = [points[k], points[k + 1]];
      if (mass(p) > eps && mass(q) <= eps) {
        lambda = p + ((mass(p) - eps) / (mass(p) - mass(q))) * (q - p);
        break;
      }
    }
  }
  return delta.map((v, i) => Math.sign(v) * Math.min(Math.max(Math.abs(v) - lambda, 0), cap[i]));
}

const SHAPE: [number, number, number, number] = [3, 4, 4, 2];

describe('projection onto the L1 ball ∩ box', () => {
  it('equals the projection computed by definition in float64, ball alone and with the box', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 40, noNaN: true }),
        fc.double({ min: 0.01, max: 5, noNaN: true }),
        async (seed, eps, spread) => {
          const [x, delta] = tf.tidy(() => [
            tf.randomUniform(SHAPE, 0, 1, 'float32', seed),
            tf.randomNormal(SHAPE, 0, spread, 'float32', seed + 1),
          ]) as tf.Tensor4D[];
          const ball = projectL1(delta, eps);
          const boxed = l1.projectInBox!(x, delta, eps);
          const [xv, dv, bv, pv] = [x, delta, ball, boxed].map((t) => Array.from(t.dataSync()));
          tf.dispose([x, delta, ball, boxed]);
          const d = dv.length / SHAPE[0];
          for (let n = 0; n < SHAPE[0]; n++) {
            const row = dv.slice(n * d, (n + 1) * d);
            const xs = xv.slice(n * d, (n + 1) * d);
            const wantBall = projectRow(
              row,
              eps,
              row.map(() => Infinity),
            );
            const wantBox = projectRow(
              row,
              eps,
              row.map((v, i) => (v > 0 ? 1 - xs[i] : xs[i])),
            );
            const scale = Math.max(1, ...row.map(Math.abs));
            bv.slice(n * d, (n + 1) * d).forEach((v, i) =>
              expect(Math.abs(v - wantBall[i])).toBeLessThan(2e-5 * scale),
            );
            pv.slice(n * d, (n + 1) * d).forEach((v, i) =>
              expect(Math.abs(v - wantBox[i])).toBeLessThan(2e-5 * scale),
            );
            // in the ball (to float32 summation) and in the box
            expect(
              pv.slice(n * d, (n + 1) * d).reduce((s, v) => s + Math.abs(v), 0),
            ).toBeLessThanOrEqual(eps * (1 + 1e-5) + 1e-5);
            pv.slice(n * d, (n + 1) * d).forEach((v, i) => {
              expect(xs[i] + v).toBeGreaterThanOrEqual(-1e-7);
              expect(xs[i] + v).toBeLessThanOrEqual(1 + 1e-7);
            });
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('leaves a point already inside unchanged and maps zero to zero', () => {
    const delta = tf.tensor4d([0.1, -0.2, 0, 0.05], [1, 2, 2, 1]);
    const x = tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D;
    const inside = l1.projectInBox!(x, delta, 1);
    expect(Array.from(inside.dataSync())).toEqual(Array.from(delta.dataSync()));
    const zero = projectL1(tf.zeros([2, 2, 2, 1]) as tf.Tensor4D, 0.5);
    expect(Array.from(zero.dataSync())).toEqual(new Array(8).fill(0));
    tf.dispose([delta, x, inside, zero]);
  });
});

describe('sparse sign step', () => {
  it('keeps the signs of the largest |g| (AutoAttack threshold), unit L1 norm, at least one coordinate', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (seed, fraction) => {
          const g = tf.randomNormal(SHAPE, 0, 1, 'float32', seed) as tf.Tensor4D;
          const step = sparseSign(g, fraction);
          const [gv, sv] = [Array.from(g.dataSync()), Array.from(step.dataSync())];
          tf.dispose([g, step]);
          const d = gv.length / SHAPE[0];
          for (let n = 0; n < SHAPE[0]; n++) {
            const row = gv.slice(n * d, (n + 1) * d);
            const out = sv.slice(n * d, (n + 1) * d);
            const threshold = [...row.map(Math.abs)].sort((p, q) => p - q)[
              Math.min(Math.max(Math.floor((1 - fraction) * d), 0), d - 1)
            ];
            const kept = row.filter((v) => Math.abs(v) >= threshold).length;
            expect(kept).toBeGreaterThanOrEqual(1);
            out.forEach((v, i) =>
              expect(v).toBeCloseTo(
                Math.abs(row[i]) >= threshold ? Math.sign(row[i]) / kept : 0,
                6,
              ),
            );
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('L1-APGD', () => {
  it("splits the iterations as AutoAttack's schedule: 30%, 30%, the rest", () => {
    expect(largeEpsIterations(100)).toEqual([30, 30, 40]);
    expect(largeEpsIterations(10)).toEqual([3, 3, 4]);
    expect(largeEpsIterations(3)).toEqual([1, 1, 1]);
  });

  it('records the schedule in its settings, only for L1', () => {
    const model = tinyConvNet(1);
    expect(apgd(model, { norm: 'l1' }).info.largeEps).toBe(true);
    expect(apgd(model, { norm: 'l1', largeEps: false }).info.largeEps).toBe(false);
    expect(apgdTargeted(model, { norm: 'l1', targetClasses: 4 }).info.largeEps).toBe(true);
    expect(apgd(model, { norm: 'linf' }).info.largeEps).toBeUndefined();
    expect(() => apgd(model, { norm: 'l2', largeEps: true })).toThrow(/L1-APGD only/);
    model.dispose();
  });

  // The minimal L1 perturbation that flips a linear two-class model moves the coordinates with the
  // largest |w_1 − w_0| first, each to its box edge: a closed form. The gradient attacks must find
  // an adversarial just above it (none can below it). Square, a random search over window
  // patterns, is checked where it matters, on a model without gradients (square.test.ts).
  it('APGD-CE/DLR, APGD-T, FAB and FAB-T fool a linear model 5% above the closed-form minimal L1 distance', async () => {
    const shape: [number, number, number] = [4, 4, 1];
    const d = 16;
    const w0 = Array.from({ length: d }, (_, i) => Math.sin(i + 1));
    const w1 = Array.from({ length: d }, (_, i) => Math.cos(3 * i));
    const others = [0.2, -0.1, 0.05]; // three weak classes so DLR and the targeted attacks have 4+ classes
    const w = Array.from({ length: d }, (_, i) => [
      w0[i],
      w1[i],
      ...others.map((o) => o * Math.sin(5 * i)),
    ]);
    const xs = Array.from({ length: d }, (_, i) => 0.3 + (0.4 * ((i * 7) % 5)) / 4);
    const z = [0, 1, 2, 3, 4].map((k) => xs.reduce((s, v, i) => s + v * w[i][k], 0));
    const b = [z[1] - z[0] + 0.6, 0, ...[2, 3, 4].map((k) => z[1] - z[k] - 3)]; // class 0 ahead of 1 by 0.6, the rest far behind
    const model = linearModel(shape, w, b);
    const x = tf.tensor4d(xs, [1, ...shape]);
    const y = tf.tensor1d([0], 'int32');
    // greedy: the cheapest L1 cost per unit of logit gap is the largest |g_i|, g = w1 − w0
    const g = w1.map((v, i) => v - w0[i]);
    let gap = 0.6;
    let minimal = 0;
    for (const i of g.map((_, i) => i).sort((p, q) => Math.abs(g[q]) - Math.abs(g[p]))) {
      const room = g[i] > 0 ? 1 - xs[i] : xs[i];
      const use = Math.min(room, gap / Math.abs(g[i]));
      minimal += use;
      gap -= use * Math.abs(g[i]);
      if (gap <= 0) break;
    }
    const eps = minimal * 1.05;
    const attacks = [
      makeAttack('apgd-ce', model, { norm: 'l1', eps, steps: 100 }),
      makeAttack('apgd-dlr', model, { norm: 'l1', eps, steps: 100 }),
      makeAttack('apgd-t', model, { norm: 'l1', eps, steps: 100, targetClasses: 4 }),
      fab(model, { norm: 'l1', eps, steps: 30 }),
      fab(model, { norm: 'l1', eps, steps: 30, targetClasses: 4 }),
    ];
    for (const attack of attacks) {
      const adv = await attack.images(x, y);
      const [size, pred, lo, hi] = tf.tidy(() =>
        [
          adv.sub(x).abs().sum(),
          (model.predict(adv) as tf.Tensor).argMax(1),
          adv.min(),
          adv.max(),
        ].map((t) => t.dataSync()[0]),
      );
      adv.dispose();
      expect(pred, `${attack.info.name} did not fool the model at eps ${eps}`).not.toBe(0);
      expect(size).toBeLessThanOrEqual(attack.info.eps * (1 + 1e-5));
      expect(size).toBeGreaterThanOrEqual(minimal * (1 - 1e-4));
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
    }
    // FAB minimizes the norm: within a few percent of the minimum (overshoot η = 1.05, back-off β)
    const fabAdv = await fab(model, { norm: 'l1', eps: 10 * minimal, steps: 30 }).images(x, y);
    const fabSize = tf.tidy(() => fabAdv.sub(x).abs().sum().dataSync()[0]);
    expect(fabSize).toBeLessThan(minimal * 1.06);
    tf.dispose([model, x, y, fabAdv]);
  });

  it('leaves no tensors behind (schedule, restarts, targets)', async () => {
    const model = tinyConvNet(2);
    const { x, y } = randomBatch(5, [8, 8, 3], 5, 4);
    const before = tf.memory().numTensors;
    for (const attack of [
      apgd(model, { norm: 'l1', eps: 2, steps: 10, restarts: 2 }),
      apgd(model, { norm: 'l1', eps: 2, steps: 10, largeEps: false }),
      apgdTargeted(model, { norm: 'l1', eps: 2, steps: 6, targetClasses: 3 }),
      square(model, { norm: 'l1', eps: 2, steps: 20 }),
    ]) {
      (await attack.images(x, y)).dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose([model, x, y]);
  });
});
