/** The fused training-mode BatchNorm: the stock layer's outputs, gradients and moving statistics, on every path. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/index.js';
import { batchNormTraining } from '../../backend/batchnorm-train.js';
import { FusedBatchNormalization, fusedBatchNorm } from '../../models/fused-batchnorm.js';

const worstRelative = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0] / (1e-6 + b.abs().max().dataSync()[0]));

/** Stock tf.layers BN, trained-mode forward and gradients of Σ y·r in x, γ and β. */
function stockReference(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, r: tf.Tensor, eps: number) {
  const layer = tf.layers.batchNormalization({ axis: -1, epsilon: eps, momentum: 0.9 });
  layer.build(x.shape);
  layer.setWeights([gamma, beta, tf.zeros(gamma.shape), tf.ones(gamma.shape)]);
  const y = layer.apply(x, { training: true }) as tf.Tensor;
  const [, , movingMean, movingVariance] = layer.getWeights();
  // Autodiff through tf.moments: the gradient the stock layer trains with.
  const axes = [0, 1, 2];
  const plain = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xi, axes);
    return xi.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(g).add(b).mul(r).sum();
  };
  return { y, grads: tf.grads(plain)([x, gamma, beta]), movingMean, movingVariance };
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' }); // registers our kernels; cpu comes with tfjs
});

describe.each(['wasm', 'cpu'] as const)('fused BatchNorm on %s', (backend) => {
  it.each([true, false])('matches the stock layer (host loops: %s): output, gradients in x, γ, β, moving statistics', async (hostLoops) => {
    await tf.setBackend(backend);
    tf.tidy(() => {
      const eps = 1e-3;
      // Off-centre data with a large mean: the statistics must not lose precision to it.
      const x = tf.randomNormal([6, 5, 5, 7], 3, 2, 'float32', 1).add(tf.linspace(0, 60, 7)) as tf.Tensor4D;
      const gamma = tf.randomNormal([7], 1, 0.5, 'float32', 2) as tf.Tensor1D;
      const beta = tf.randomNormal([7], 0, 1, 'float32', 3) as tf.Tensor1D;
      const r = tf.randomNormal([6, 5, 5, 7], 0, 1, 'float32', 4);
      const ref = stockReference(x, gamma, beta, r, eps);
      const ours = batchNormTraining(x, gamma, beta, eps, { hostLoops });
      expect(worstRelative(ours.y, ref.y)).toBeLessThan(1e-5);
      expect(worstRelative(ours.mean, tf.moments(x, [0, 1, 2]).mean)).toBeLessThan(1e-6);
      expect(worstRelative(ours.variance, tf.moments(x, [0, 1, 2]).variance)).toBeLessThan(1e-4);
      const grads = tf.grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(xi, g as tf.Tensor1D, b as tf.Tensor1D, eps, { hostLoops }).y.mul(r).sum())([x, gamma, beta]);
      grads.forEach((g, i) => expect(worstRelative(g, ref.grads[i]), `gradient ${['x', 'γ', 'β'][i]}`).toBeLessThan(1e-3));
    });
  });

  it('the layer updates moving statistics as the stock layer, and leaves no tensors behind', async () => {
    await tf.setBackend(backend);
    const args = { axis: -1, momentum: 0.9, epsilon: 1e-3 };
    const stock = tf.layers.batchNormalization(args);
    const fused = fusedBatchNorm(args);
    expect(fused).toBeInstanceOf(FusedBatchNormalization);
    const x = tf.randomNormal([4, 3, 3, 5], 2, 3, 'float32', 7);
    for (const l of [stock, fused]) l.build(x.shape);
    fused.setWeights(stock.getWeights());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.dispose([stock.apply(x, { training: true }) as tf.Tensor, fused.apply(x, { training: true }) as tf.Tensor]);
    }
    expect(tf.memory().numTensors).toBe(before);
    stock.getWeights().forEach((w, i) => expect(worstRelative(fused.getWeights()[i], w)).toBeLessThan(1e-5));
    // Inference uses the moving statistics, as the stock layer does.
    expect(worstRelative(fused.apply(x) as tf.Tensor, stock.apply(x) as tf.Tensor)).toBeLessThan(1e-5);
  });
});
