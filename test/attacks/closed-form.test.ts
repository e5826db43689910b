/** Cases with a known answer: linear models, where the optimal perturbation has a closed form, and hand-computed losses. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { crossEntropy, dlr, dlrTargeted, fgsm, makeAttack, pgd } from '../../attacks/index.js';
import { linearModel } from './models.js';
import { Rng } from '../../util/rng.js';

const SHAPE: [number, number, number] = [3, 3, 2]; // 18 pixels
const D = 18;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/**
 * A 2-class linear model and x = 0.5 everywhere, with the bias set so the clean margin of class 0
 * is 2: the attacks below cannot flip it (so the loss maximizer is the answer), and the softmax is
 * not saturated (so the gradient is not zero in float32).
 */
function setup(seed: number) {
  const rng = new Rng(seed);
  const w = Array.from({ length: D }, () => [rng.next() * 2 - 1, rng.next() * 2 - 1]);
  const model = linearModel(SHAPE, w, [2 - 0.5 * w.reduce((s, r) => s + r[0] - r[1], 0), 0]);
  const x = tf.fill([1, ...SHAPE], 0.5) as tf.Tensor4D;
  const y = tf.tensor1d([0], 'int32');
  const diff = w.map((r) => r[1] - r[0]); // w_other − w_y: the direction that raises the loss
  return { model, x, y, diff };
}

const delta = (adv: tf.Tensor4D, x: tf.Tensor4D) =>
  Array.from(tf.tidy(() => adv.sub(x)).dataSync());

describe('linear model, untargeted', () => {
  for (const seed of [1, 2, 3]) {
    it(`Linf: FGSM, PGD and APGD all find eps·sign(w_other − w_y) (seed ${seed})`, async () => {
      const { model, x, y, diff } = setup(seed);
      const eps = 0.05;
      const expected = diff.map((d) => eps * Math.sign(d));
      for (const attack of [
        fgsm(model, { eps }),
        pgd(model, { eps, steps: 10 }),
        makeAttack('apgd-ce', model, { eps, steps: 20 }),
      ]) {
        const adv = await attack.images(x, y);
        delta(adv, x).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
        adv.dispose();
      }
      tf.dispose([model, x, y]);
    });

    it(`L2: FGSM and PGD find eps·(w_other − w_y)/‖w_other − w_y‖; from a random start they converge to it (seed ${seed})`, async () => {
      const { model, x, y, diff } = setup(seed);
      const eps = 0.3;
      const len = Math.hypot(...diff);
      const expected = diff.map((d) => (eps * d) / len);
      for (const attack of [
        fgsm(model, { eps, norm: 'l2' }),
        pgd(model, { eps, norm: 'l2', steps: 10, randomStart: false }),
      ]) {
        const adv = await attack.images(x, y);
        delta(adv, x).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
        adv.dispose();
      }
      // A random start leaves an orthogonal part that projection shrinks step by step.
      for (const attack of [
        pgd(model, { eps, norm: 'l2', steps: 200, alpha: 0.05 }),
        makeAttack('apgd-ce', model, { eps, norm: 'l2', steps: 100 }),
      ]) {
        const adv = await attack.images(x, y);
        const d = delta(adv, x);
        const cos = d.reduce((s, v, i) => s + v * expected[i], 0) / (Math.hypot(...d) * eps);
        expect(cos).toBeGreaterThan(0.99);
        expect(Math.hypot(...d)).toBeCloseTo(eps, 4);
        adv.dispose();
      }
      tf.dispose([model, x, y]);
    });
  }
});

describe('linear model, a confidently classified example', () => {
  // Clean margin 40: the loss is e^−40 ≈ 4e-18 and its input gradient ~1e-18 per pixel, far below
  // float32's epsilon. The attacks must still find the closed-form answers, not stay at x.
  const confident = (seed: number) => {
    const s = setup(seed);
    const w = s.diff.map((d) => [0, d]); // logits: z_0 = b_0, z_1 = diff·x; margin set by b_0
    const model = linearModel(SHAPE, w, [40 + 0.5 * s.diff.reduce((a, b) => a + b, 0), 0]);
    s.model.dispose();
    return { ...s, model };
  };

  for (const seed of [1, 2]) {
    it(`Linf: FGSM, PGD, MI-FGSM and APGD step along eps·sign(w_other − w_y) in every pixel (seed ${seed})`, async () => {
      const { model, x, y, diff } = confident(seed);
      const eps = 0.05;
      const expected = diff.map((d) => eps * Math.sign(d));
      const attacks = [
        fgsm(model, { eps }),
        pgd(model, { eps, steps: 5 }),
        makeAttack('mifgsm', model, { eps, steps: 5 }),
        makeAttack('apgd-ce', model, { eps, steps: 20 }),
      ];
      for (const attack of attacks) {
        const adv = await attack.images(x, y);
        delta(adv, x).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
        adv.dispose();
      }
      tf.dispose([model, x, y]);
    });

    it(`L2: FGSM and PGD step eps·(w_other − w_y)/‖w_other − w_y‖ (seed ${seed})`, async () => {
      const { model, x, y, diff } = confident(seed);
      const eps = 0.3;
      const len = Math.hypot(...diff);
      for (const attack of [
        fgsm(model, { eps, norm: 'l2' }),
        pgd(model, { eps, norm: 'l2', steps: 5, randomStart: false }),
      ]) {
        const adv = await attack.images(x, y);
        delta(adv, x).forEach((v, i) => expect(v).toBeCloseTo((eps * diff[i]) / len, 5));
        adv.dispose();
      }
      tf.dispose([model, x, y]);
    });
  }
});

describe('linear model, targeted', () => {
  it('targeted FGSM steps along eps·sign(W(e_t − softmax(z))), the descent direction of CE toward t', async () => {
    const rng = new Rng(5);
    const classes = 4;
    const w = Array.from({ length: D }, () =>
      Array.from({ length: classes }, () => rng.next() * 2 - 1),
    );
    const model = linearModel(SHAPE, w, [1, 0.5, 0, -0.5]);
    const x = tf.fill([1, ...SHAPE], 0.5) as tf.Tensor4D;
    const y = tf.tensor1d([0], 'int32');
    const t = tf.tensor1d([2], 'int32');
    const p = tf.tidy(() => (model.predict(x) as tf.Tensor2D).softmax()).dataSync();
    const eps = 0.02;
    const expected = w.map(
      (row) => eps * Math.sign(row.reduce((s, wk, k) => s + wk * ((k === 2 ? 1 : 0) - p[k]), 0)),
    );
    const adv = await fgsm(model, { eps }).images(x, y, { targets: t });
    delta(adv, x).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    // PGD reaches the target when the budget allows it
    const far = await pgd(model, { eps: 0.5, steps: 20 }).images(x, y, { targets: t });
    expect(tf.tidy(() => (model.predict(far) as tf.Tensor2D).argMax(1)).dataSync()[0]).toBe(2);
    tf.dispose([model, x, y, t, adv, far]);
  });
});

describe('losses by hand', () => {
  it('cross-entropy equals tf.losses.softmaxCrossEntropy per example', () => {
    const z = tf.tensor2d([
      [2, 1, 0.1],
      [0.5, 0.5, 3],
    ]);
    const y = tf.tensor1d([0, 1], 'int32');
    const ours = crossEntropy(z, y).dataSync();
    const ref = tf.losses
      .softmaxCrossEntropy(tf.oneHot(y, 3), z, undefined, undefined, tf.Reduction.NONE)
      .dataSync();
    ours.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 5));
  });

  it('cross-entropy keeps its float32 precision on confident rows, where lse(z) − z_y rounds to 0', () => {
    // Margins 20, 40 and 80: the loss is log(1 + Σ_{j≠y} e^{z_j − z_y}) ≈ Σ e^{−margin}.
    const z = tf.tensor2d([
      [20, 0, -5],
      [0, 40, 1],
      [-30, 50, 0],
      [1, 2, 3],
    ]);
    const labels = [0, 1, 1, 0];
    const v = crossEntropy(z, tf.tensor1d(labels, 'int32')).dataSync();
    const ref = (z.arraySync() as number[][]).map((row, r) => {
      const m = Math.max(...row);
      return m + Math.log(row.reduce((s, zj) => s + Math.exp(zj - m), 0)) - row[labels[r]];
    });
    ref[0] = Math.exp(-20) + Math.exp(-25); // the float64 sum above rounds these two as well
    ref[1] = Math.exp(-40) + Math.exp(-39);
    ref[2] = Math.exp(-80) + Math.exp(-50);
    v.forEach((got, i) => expect(Math.abs(got - ref[i])).toBeLessThanOrEqual(1e-6 * ref[i]));
  });

  it('cross-entropy gradient is softmax − one-hot, exact even where p_y rounds to 1', () => {
    // Row 0 is confident: autodiff's p_y − 1 rounds to 0 in float32 while the others are ~1e-11.
    const rows = [
      [30, 0, 5],
      [2, 1, 0.1],
    ];
    const labels = [0, 2];
    const g = tf
      .grad((z: tf.Tensor) =>
        crossEntropy(z as tf.Tensor2D, tf.tensor1d(labels, 'int32'))
          .mul(tf.tensor1d([1, 2]))
          .sum(),
      )(tf.tensor2d(rows))
      .arraySync() as number[][];
    rows.forEach((z, r) => {
      const e = z.map((v) => Math.exp(v - Math.max(...z)));
      const p = e.map((v) => v / e.reduce((a, b) => a + b));
      const ref = p.map(
        (v, j) =>
          (r + 1) * (j === labels[r] ? -p.filter((_, k) => k !== j).reduce((a, b) => a + b) : v),
      );
      ref.forEach((v, j) => expect(Math.abs(g[r][j] - v)).toBeLessThanOrEqual(1e-5 * Math.abs(v)));
    });
    expect(g[0][0]).toBeLessThan(0); // the true logit is still pushed down
  });

  it('DLR: −(z_y − max_{i≠y} z_i)/(z_π1 − z_π3); targeted: −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2)', () => {
    const z = tf.tensor2d([
      [3, 1, 2, 0],
      [3, 1, 2, 0],
    ]);
    const v = dlr(z, tf.tensor1d([0, 1], 'int32')).dataSync();
    expect(v[0]).toBeCloseTo(-0.5, 6); // −(3 − 2)/(3 − 1)
    expect(v[1]).toBeCloseTo(1, 6); // −(1 − 3)/(3 − 1)
    const t = dlrTargeted(z, tf.tensor1d([0, 0], 'int32'), tf.tensor1d([2, 3], 'int32')).dataSync();
    expect(t[0]).toBeCloseTo(-1 / 2.5, 6); // −(3 − 2)/(3 − 0.5)
    expect(t[1]).toBeCloseTo(-3 / 2.5, 6); // −(3 − 0)/(3 − 0.5)
    // invariant to shifting and scaling the logits
    const w = dlr(z.mul(7).add(3) as tf.Tensor2D, tf.tensor1d([0, 1], 'int32')).dataSync();
    expect(w[0]).toBeCloseTo(v[0], 5);
    expect(w[1]).toBeCloseTo(v[1], 5);
  });

  it('DLR attacks refuse models with too few classes', () => {
    const { model } = setup(1);
    expect(() => makeAttack('apgd-dlr', model, {})).toThrow(/at least 3 classes/);
    model.dispose();
  });

  it('DLR gradients flow (no op without a gradient on the path)', () => {
    const g = tf
      .grad((z: tf.Tensor) => dlr(z as tf.Tensor2D, tf.tensor1d([0], 'int32')).sum())(
        tf.tensor2d([[3, 1, 2, 0]]),
      )
      .dataSync();
    // d/dz of −(z0 − z2)/(z0 − z1) at (3,1,2,0): [−(z2−z1)/(z0−z1)², −(z0−z2)/(z0−z1)², 1/(z0−z1), 0]
    expect(Array.from(g).map((v) => +v.toFixed(5))).toEqual([-0.25, -0.25, 0.5, 0]);
  });
});
