/** The fused training-mode BatchNorm: the stock layer's outputs, gradients and moving statistics, on every path. */
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { batchNormTraining } from '../../backend/ops/batchnorm-train.js';
import {
  FusedBatchNormalization,
  fusedBatchNorm,
  updateMovingAverage,
} from '../../models/fused-batchnorm.js';
import { wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { inputGrad } from '../../backend/ops/gradients.js';

const worstRelative = (a: tf.Tensor, b: tf.Tensor) =>
  tf.tidy(() => a.sub(b).abs().max().dataSync()[0] / (1e-6 + b.abs().max().dataSync()[0]));

/** Stock tf.layers BN, trained-mode forward and gradients of Σ y·r in x, γ and β. */
function stockReference(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  r: tf.Tensor,
  eps: number,
) {
  const layer = tf.layers.batchNormalization({ axis: -1, epsilon: eps, momentum: 0.9 });
  layer.build(x.shape);
  layer.setWeights([gamma, beta, tf.zeros(gamma.shape), tf.ones(gamma.shape)]);
  const y = layer.apply(x, { training: true }) as tf.Tensor;
  const [, , movingMean, movingVariance] = layer.getWeights();
  // Autodiff through tf.moments: the gradient the stock layer trains with.
  const axes = [0, 1, 2];
  const plain = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xi, axes);
    return xi
      .sub(mean)
      .mul(tf.rsqrt(variance.add(eps)))
      .mul(g)
      .add(b)
      .mul(r)
      .sum();
  };
  return { y, grads: tf.grads(plain)([x, gamma, beta]), movingMean, movingVariance };
}

/** Per-channel mean and biased variance of channels-last values, in float64. */
function exactMoments(values: ArrayLike<number>, channels: number) {
  const n = values.length / channels;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) mean[i % channels] += values[i] / n;
  for (let i = 0; i < values.length; i++)
    variance[i % channels] += (values[i] - mean[i % channels]) ** 2 / n;
  return { mean: Float32Array.from(mean), variance: Float32Array.from(variance) };
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm' }); // registers our kernels; cpu comes with tfjs
});

describe.each(['wasm', 'cpu'] as const)('fused BatchNorm on %s', (backend) => {
  // Paths: our SIMD kernels (wasm; on cpu the JS loops), the JS loops, tf ops. Shapes: small, and one
  // large enough for two threads with channel counts that take every vector width and a tail.
  const paths = [
    { name: 'kernels', opts: {} },
    { name: 'JS loops', opts: { jsLoops: true } },
    { name: 'tf ops', opts: { hostLoops: false } },
  ];
  const shapes = [
    [6, 5, 5, 7],
    [128, 16, 16, 20],
    [96, 8, 8, 13],
  ];
  describe.each(paths)('$name', ({ name, opts }) => {
    it.each(shapes)(
      'matches the stock layer on [%i, %i, %i, %i]: output, gradients in x, γ, β, moving statistics',
      async (...shape) => {
        await tf.setBackend(backend);
        const calls = wasmKernelStats('channel_sums').calls;
        tf.tidy(() => {
          const eps = 1e-3;
          const c = shape[3];
          // Off-centre data with a large mean: the statistics must not lose precision to it.
          const x = tf
            .randomNormal(shape, 3, 2, 'float32', 1)
            .add(tf.linspace(0, 60, c)) as tf.Tensor4D;
          const gamma = tf.randomNormal([c], 1, 0.5, 'float32', 2) as tf.Tensor1D;
          const beta = tf.randomNormal([c], 0, 1, 'float32', 3) as tf.Tensor1D;
          const r = tf.randomNormal(shape, 0, 1, 'float32', 4);
          const ref = stockReference(x, gamma, beta, r, eps);
          const ours = batchNormTraining(x, gamma, beta, eps, opts);
          // The stock layer's own float32 statistics carry ~1e-5 on the larger shapes.
          expect(worstRelative(ours.y, ref.y)).toBeLessThan(5e-5);
          // Statistics against float64 sums (tf.moments, which the tf-ops path uses, sums in float32).
          const exact = exactMoments(x.dataSync(), c);
          expect(worstRelative(ours.mean, tf.tensor1d(exact.mean))).toBeLessThan(
            name === 'tf ops' ? 1e-5 : 1e-6,
          );
          expect(worstRelative(ours.variance, tf.tensor1d(exact.variance))).toBeLessThan(1e-5);
          const grads = tf.grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
            batchNormTraining(xi, g as tf.Tensor1D, b as tf.Tensor1D, eps, opts)
              .y.mul(r)
              .sum(),
          )([x, gamma, beta]);
          grads.forEach((g, i) =>
            expect(worstRelative(g, ref.grads[i]), `gradient ${['x', 'γ', 'β'][i]}`).toBeLessThan(
              1e-3,
            ),
          );
        });
        // Statistics, forward and backward sums: three kernel calls on the kernel path, over two threads
        // for the large shapes.
        const kernelPath = backend === 'wasm' && name === 'kernels';
        expect(wasmKernelStats('channel_sums').calls - calls).toBe(kernelPath ? 3 : 0);
        if (kernelPath)
          expect(wasmKernelStats('channel_sums').lastThreads).toBe(
            shape[0] === 128 ? Math.min(2, getThreadsCount()) : 1,
          );
      },
    );
  });

  it('a moving statistic updated from host arrays takes the tf ops values bit for bit', async () => {
    await tf.setBackend(backend);
    const c = 37;
    const layers = [0, 1].map(() => fusedBatchNorm({ axis: -1 }));
    for (const l of layers) l.build([1, 1, 1, c]);
    const start = tf.randomNormal([c], 5, 30, 'float32', 11);
    const moving = layers.map((l) => (l as unknown as { movingMean: tf.LayerVariable }).movingMean);
    for (const v of moving) v.write(start);
    for (const [k, momentum] of [0.9, 0.99, 0.1, 0].entries()) {
      const batch = tf.randomNormal([c], -3, 1e3 * 10 ** -k, 'float32', 20 + k);
      updateMovingAverage(moving[0], batch.dataSync() as Float32Array, momentum);
      updateMovingAverage(moving[1], batch, momentum);
      const [a, b] = moving.map((v) =>
        Array.from(new Uint32Array(v.read().dataSync().slice().buffer)),
      );
      expect(a, `momentum ${momentum}`).toEqual(b);
      batch.dispose();
    }
    start.dispose();
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
      tf.dispose([
        stock.apply(x, { training: true }) as tf.Tensor,
        fused.apply(x, { training: true }) as tf.Tensor,
      ]);
    }
    expect(tf.memory().numTensors).toBe(before);
    stock
      .getWeights()
      .forEach((w, i) => expect(worstRelative(fused.getWeights()[i], w)).toBeLessThan(1e-5));
    // Inference uses the moving statistics, as the stock layer does.
    expect(worstRelative(fused.apply(x) as tf.Tensor, stock.apply(x) as tf.Tensor)).toBeLessThan(
      1e-5,
    );
  });

  it('without scale or center (a user model): the same outputs, and gradients in both modes', async () => {
    await tf.setBackend(backend);
    const args = { axis: -1, momentum: 0.9, epsilon: 1e-3, center: false, scale: false };
    const stock = tf.layers.batchNormalization(args);
    const fused = fusedBatchNorm(args);
    const x = tf.randomNormal([4, 3, 3, 5], 2, 3, 'float32', 8);
    for (const l of [stock, fused]) l.build(x.shape);
    fused.setWeights([tf.fill([5], 0.5), tf.fill([5], 4)]);
    stock.setWeights(fused.getWeights());
    expect(worstRelative(fused.apply(x) as tf.Tensor, stock.apply(x) as tf.Tensor)).toBeLessThan(
      1e-6,
    );
    // the stock layer's FusedBatchNorm without scale cannot be differentiated (a TypeError saving it)
    for (const training of [false, true]) {
      const g = inputGrad((xi) => (fused.apply(xi, { training }) as tf.Tensor).square().sum())(x);
      expect(Number.isFinite(g.abs().sum().dataSync()[0])).toBe(true);
      g.dispose();
    }
  });
});
