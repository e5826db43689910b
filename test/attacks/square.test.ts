/** Square Attack: score-based, forward passes only; APGD-T: targets the most likely wrong classes. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { apgdTargeted, fab, pgd, square } from '../../attacks/index.js';
import { squareP } from '../../attacks/square.js';
import { kthLargestClass } from '../../attacks/apgd-targeted.js';
import { layersClassifier, type Classifier } from '../../models/classifier.js';
import { randomBatch, tinyConvNet } from './models.js';
import { SUITE_THREADS } from '../helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
});

/** `model` whose input gradient is zero everywhere (gradient masking in its purest form): same logits. */
function zeroGradient(model: tf.LayersModel): Classifier {
  const base = layersClassifier(model);
  const masked = tf.customGrad((x) => ({
    value: base.logits(x as tf.Tensor4D, 'inference'),
    gradFunc: (_dy: tf.Tensor) => tf.zerosLike(x),
  }));
  return { ...base, logits: (x) => masked(x) as tf.Tensor2D };
}

function predicted(c: Classifier, x: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => c.logits(x, 'inference').argMax(1).cast('int32') as tf.Tensor1D);
}

async function fooledShare(c: Classifier, adv: tf.Tensor4D, y: tf.Tensor1D): Promise<number> {
  const wrong = tf.tidy(() => predicted(c, adv).notEqual(y).cast('float32').mean());
  const v = (await wrong.data())[0];
  wrong.dispose();
  return v;
}

describe('square', () => {
  it("follows AutoAttack's p-schedule", () => {
    expect(
      [0, 10, 11, 50, 51, 200, 201, 1000, 1001, 8000, 8001, 9999].map((q) => squareP(q, 0.8)),
    ).toEqual([
      0.8,
      0.8,
      0.4,
      0.4,
      0.2,
      0.2,
      0.1,
      0.8 / 16,
      0.8 / 32,
      0.8 / 256,
      0.8 / 512,
      0.8 / 512,
    ]);
  });

  for (const norm of ['linf', 'l2', 'l1'] as const) {
    it(`${norm}: fools a model whose gradient is zero, where PGD cannot`, async () => {
      const model = tinyConvNet(4, [12, 12, 3], 5);
      const c = zeroGradient(model);
      const { x } = randomBatch(24, [12, 12, 3], 5, 9);
      const y = predicted(c, x);
      const eps = { linf: 0.3, l2: 4, l1: 40 }[norm];
      const advPgd = await pgd(c, { eps, norm, steps: 20, randomStart: false }).images(x, y);
      const advSquare = await square(c, { eps, norm, steps: 300, seed: 1 }).images(x, y);
      const [pgdFooled, squareFooled] = [
        await fooledShare(c, advPgd, y),
        await fooledShare(c, advSquare, y),
      ];
      const [linf, l2, l1] = tf.tidy(() => {
        const d = advSquare.sub(x);
        return [
          d.abs().max(),
          d.square().sum([1, 2, 3]).sqrt().max(),
          d.abs().sum([1, 2, 3]).max(),
        ].map((t) => t.dataSync()[0]);
      });
      tf.dispose([model, x, y, advPgd, advSquare]);
      expect(pgdFooled).toBe(0);
      expect(squareFooled).toBeGreaterThan(0.5);
      if (norm === 'linf') expect(linf).toBeLessThanOrEqual(eps + 1e-6);
      else if (norm === 'l2') expect(l2).toBeLessThanOrEqual(eps * (1 + 1e-5));
      else expect(l1).toBeLessThanOrEqual(eps * (1 + 1e-5));
    });
  }

  it('is deterministic for a seed and leaves no tensors behind', async () => {
    const model = tinyConvNet(2);
    const { x, y } = randomBatch(6, [8, 8, 3], 5, 3);
    const before = tf.memory().numTensors;
    const a = await square(model, { eps: 0.1, steps: 50, seed: 5 }).images(x, y);
    const b = await square(model, { eps: 0.1, steps: 50, seed: 5 }).images(x, y);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([a, b]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([model, x, y]);
  });
});

describe('apgd-t', () => {
  it('targets the k-th most likely class', () => {
    const z = tf.tensor2d([
      [0.1, 3, 2, -1, 5],
      [4, 1, 2, 3, 0],
    ]);
    expect(Array.from(kthLargestClass(z, 2).dataSync())).toEqual([1, 3]);
    expect(Array.from(kthLargestClass(z, 5).dataSync())).toEqual([3, 4]);
    z.dispose();
  });

  it('is at least as strong as one targeted run and leaves no tensors behind', async () => {
    const model = tinyConvNet(6);
    const { x } = randomBatch(16, [8, 8, 3], 5, 4);
    const c = layersClassifier(model);
    const y = predicted(c, x);
    const before = tf.memory().numTensors;
    const all = await apgdTargeted(model, { eps: 0.03, steps: 10, seed: 1 }).images(x, y);
    const one = await apgdTargeted(model, {
      eps: 0.03,
      steps: 10,
      seed: 1,
      targetClasses: 1,
    }).images(x, y);
    const [fAll, fOne] = [await fooledShare(c, all, y), await fooledShare(c, one, y)];
    tf.dispose([all, one]);
    expect(tf.memory().numTensors).toBe(before);
    expect(fAll).toBeGreaterThanOrEqual(fOne);
    expect(fAll).toBeGreaterThan(0);
    tf.dispose([model, x, y]);
  });

  it('refuses a user target and models with fewer than 4 classes', async () => {
    expect(() => apgdTargeted(tinyConvNet(1), { targeted: 'random' })).toThrow(
      /chooses its own targets/,
    );
    const three = tinyConvNet(1, [8, 8, 3], 3);
    const { x, y } = randomBatch(2, [8, 8, 3], 3, 1);
    await expect(apgdTargeted(three, { steps: 2 }).images(x, y)).rejects.toThrow(
      /at least 4 classes/,
    );
    tf.dispose([three, x, y]);
  });
});

describe('fab', () => {
  // On a linear model the boundary is exact, so FAB's first projection is the minimum-norm
  // adversarial perturbation itself: its size has a closed form.
  it('on a linear two-class-margin model finds the closed-form minimum-norm perturbation (Linf, L2)', async () => {
    const { linearModel } = await import('./models.js');
    const shape: [number, number, number] = [2, 2, 1];
    const w = [
      [1, -1, 0, 0],
      [0.5, 0.2, 0, 0],
      [-0.3, 1, 0, 0],
      [0.25, 0.5, 0, 0],
    ]; // [4 inputs, 4 classes]
    const model = linearModel(shape, w, [0, 0, 0, 0]);
    const x = tf.tensor4d([0.6, 0.5, 0.5, 0.5], [1, ...shape]);
    const y = tf.tensor1d([0], 'int32');
    // logits z_k = Σ_i x_i W[i][k]; class 0 wins; gaps to class k and their gradients g_k = W[:,k] − W[:,0]
    const xs = [0.6, 0.5, 0.5, 0.5];
    const z = [0, 1, 2, 3].map((k) => xs.reduce((s, v, i) => s + v * w[i][k], 0));
    expect(z.indexOf(Math.max(...z))).toBe(0);
    for (const norm of ['linf', 'l2'] as const) {
      // distance to each boundary: (z_0 − z_k) / ‖W[:,k] − W[:,0]‖_dual, the smallest over k (no box constraint is active here)
      const dist = [1, 2, 3].map((k) => {
        const g = [0, 1, 2, 3].map((i) => w[i][k] - w[i][0]);
        const dual = norm === 'linf' ? g.reduce((s, v) => s + Math.abs(v), 0) : Math.hypot(...g);
        return (z[0] - z[k]) / dual;
      });
      const minimal = Math.min(...dist);
      const adv = await fab(model, { norm, eps: 1, steps: 30 }).images(x, y);
      const size = tf.tidy(() => {
        const dd = adv.sub(x);
        return (norm === 'linf' ? dd.abs().max() : dd.square().sum().sqrt()).dataSync()[0];
      });
      const fooled = tf.tidy(() => (model.predict(adv) as tf.Tensor).argMax(1).dataSync()[0]) !== 0;
      expect(fooled).toBe(true);
      // FAB overshoots by η = 1.05 and then backs off by β: within a few percent of the minimum
      expect(size).toBeGreaterThanOrEqual(minimal * (1 - 1e-4));
      expect(size).toBeLessThan(minimal * 1.06);
      adv.dispose();
      // with eps below the minimum nothing can be found: the image comes back unchanged
      const none = await fab(model, { norm, eps: minimal * 0.9, steps: 30 }).images(x, y);
      expect(Array.from(none.dataSync())).toEqual(Array.from(x.dataSync()));
      none.dispose();
    }
    tf.dispose([model, x, y]);
  });

  it('fab-t leaves no tensors behind and returns points in the ball', async () => {
    const model = tinyConvNet(3);
    const { x } = randomBatch(8, [8, 8, 3], 5, 2);
    const y = predicted(layersClassifier(model), x);
    const before = tf.memory().numTensors;
    const adv = await fab(model, { eps: 0.05, steps: 10, targetClasses: 4 }).images(x, y);
    const linf = tf.tidy(() => adv.sub(x).abs().max().dataSync()[0]);
    adv.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(linf).toBeLessThanOrEqual(0.05 + 1e-6);
    tf.dispose([model, x, y]);
  });
});
