/** BatchNorm folding: the folded copy is the same function (logits and input gradients) in inference mode. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { createModel } from '../../models/zoo.js';
import { foldBatchNorm, foldedClassifier } from '../../models/fold.js';
import { Rng } from '../../util/rng.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** A zoo model whose BN layers hold non-trivial statistics and affine parameters. */
function model(name: string): tf.LayersModel {
  const m = createModel(name, {
    inputShape: [16, 16, 3],
    numClasses: 10,
    mean: [0.49, 0.48, 0.45],
    std: [0.25, 0.24, 0.26],
    width: 4,
    seed: 3,
  });
  m.setUserDefinedMetadata({ robust: { model: name, width: 4 } });
  const rng = new Rng(7);
  for (const l of m.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const [g, b, mu, v] = l.getWeights();
    const r = (t: tf.Tensor, lo: number, hi: number) =>
      tf.tensor(
        Float32Array.from({ length: t.size }, () => lo + (hi - lo) * rng.next()),
        t.shape,
      );
    l.setWeights([r(g, 0.5, 1.5), r(b, -0.3, 0.3), r(mu, -0.5, 0.5), r(v, 0.2, 2)]);
  }
  return m;
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};

describe('foldBatchNorm', () => {
  for (const [name, bns] of [
    ['resnet20', 21],
    ['resnet50', 53],
    ['preact-resnet18', 8],
  ] as const) {
    it(`${name}: same logits and input gradients, ${bns} BN layers fewer (those that directly follow a conv)`, () => {
      const m = model(name);
      const folded = foldBatchNorm(m)!;
      const count = (x: tf.LayersModel) =>
        x.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
      expect(count(m) - count(folded)).toBe(bns);
      const y = tf.tensor1d([0, 3, 5, 9], 'int32');
      // Four input draws: a ReLU whose input lies within rounding of 0 may take the other side
      // once BN is folded, and the gradient then moves by far more than rounding (resnet50 on
      // draw 5: 9.1e-4, on the cpu backend as on wasm; draws 6–9: 3.5e-7–3.8e-6). The logits
      // must agree on every draw, the gradients on most; a wrong fold is off by O(1) on all.
      const gradErrs = [5, 6, 7, 8].map((seed) => {
        const x = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', seed);
        const logits = (net: tf.LayersModel) =>
          (net.apply(x, { training: false }) as tf.Tensor).dataSync();
        expect(relErr(logits(folded), logits(m))).toBeLessThan(1e-5);
        const grad = (net: tf.LayersModel) =>
          tf
            .grad((xi: tf.Tensor) =>
              tf.losses.softmaxCrossEntropy(
                tf.oneHot(y, 10),
                net.apply(xi, { training: false }) as tf.Tensor,
              ),
            )(x)
            .dataSync();
        const err = relErr(grad(folded), grad(m));
        x.dispose();
        return err;
      });
      expect(gradErrs.filter((e) => e < 1e-4).length, String(gradErrs)).toBeGreaterThanOrEqual(3);
      expect(Math.max(...gradErrs)).toBeLessThan(1e-2);
      tf.dispose([m, folded, y]);
    });
  }

  it('the folded classifier uses the folded copy for inference and the model itself in train mode', () => {
    const m = model('resnet20');
    const before = tf.memory().numTensors;
    foldedClassifier(m)!.dispose!();
    expect(tf.memory().numTensors).toBe(before); // dispose frees the folded copy
    const c = foldedClassifier(m)!;
    const x = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 6);
    const train = c.logits(x, 'train').dataSync();
    const ref = (m.apply(x, { training: true }) as tf.Tensor).dataSync();
    expect(relErr(train, ref)).toBeLessThan(1e-6);
    expect(
      foldBatchNorm(tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] })),
    ).toBeNull();
  });
});
