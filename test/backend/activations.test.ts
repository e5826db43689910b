import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';

/** Values around every edge of ReLU6 and the sigmoid, NaN and signed zeros included, then random ones. */
function values(n: number): Float32Array {
  const edges = [
    NaN,
    -0,
    0,
    6,
    -6,
    5.9999995,
    6.0000005,
    1e-30,
    -1e-30,
    3,
    -3,
    1e30,
    -1e30,
    Infinity,
    -Infinity,
    50,
    -50,
  ];
  const rng = new Rng(5);
  return Float32Array.from({ length: n }, (_, i) =>
    i < edges.length ? edges[i] : (rng.next() - 0.5) * 16,
  );
}

/** relu6(x), and the gradients of sum(relu6(x) · r) and sum(sigmoid(x) · r), on the current backend. */
function run(x: Float32Array, r: Float32Array) {
  return tf.tidy(() => {
    const xt = tf.tensor1d(x);
    const rt = tf.tensor1d(r);
    return {
      relu6: tf.relu6(xt).dataSync().slice(),
      relu6Grad: tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu6(t), rt)))(xt)
        .dataSync()
        .slice(),
      sigmoidGrad: tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sigmoid(t), rt)))(xt)
        .dataSync()
        .slice(),
    };
  });
}

describe('ReLU6 and sigmoid on our wasm kernels', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Large enough for two threads; a length that leaves a scalar tail.
  for (const n of [37, 600_003]) {
    it(`give the cpu backend's values, NaN and -0 included (${n} values)`, async () => {
      const x = values(n);
      const r = Float32Array.from(values(n).reverse(), (v) => (Number.isFinite(v) ? v / 7 : 1));
      await tf.setBackend('cpu');
      const ref = run(x, r);
      await tf.setBackend('wasm');
      const before = ['relu6', 'relu6_grad', 'sigmoid_grad'].map((k) => wasmKernelStats(k).calls);
      const got = run(x, r);
      expect(
        ['relu6', 'relu6_grad', 'sigmoid_grad'].map((k, i) => wasmKernelStats(k).calls - before[i]),
      ).toEqual([2, 1, 1]);
      if (n > 500_000)
        expect(wasmKernelStats('relu6_grad').lastThreads).toBe(Math.min(2, getThreadsCount()));
      // ReLU6 and its gradient bit for bit (Object.is: NaN equals NaN, -0 differs from +0); the
      // sigmoid's gradient within 1e-6 (|dx| ≤ 0.25·|r| ≤ 0.6), as wasm's Sigmoid (XNNPACK) differs
      // from the cpu's by ~1e-7, which 1 − y amplifies; ours equals tfjs's formula on wasm bit for bit (next test).
      for (const k of ['relu6', 'relu6Grad', 'sigmoidGrad'] as const) {
        const same = (v: number, w: number) =>
          Object.is(v, w) || (k === 'sigmoidGrad' && Math.abs(v - w) <= 1e-6);
        const bad = Array.from(got[k]).findIndex((v, i) => !same(v, ref[k][i]));
        expect(bad, `${k}[${bad}]: ${got[k][bad]} vs ${ref[k][bad]} at x = ${x[bad]}`).toBe(-1);
      }
    });
  }

  it("without our kernels, tfjs's kernels and formulas give the same values bit for bit", () => {
    const x = values(64);
    const r = Float32Array.from(x, (_, i) => i / 10);
    const ours = run(x, r);
    useWasmKernels(false);
    try {
      const before = ['relu6', 'relu6_grad', 'sigmoid_grad'].map((k) => wasmKernelStats(k).calls);
      const stock = run(x, r);
      expect(
        ['relu6', 'relu6_grad', 'sigmoid_grad'].map((k, i) => wasmKernelStats(k).calls - before[i]),
      ).toEqual([0, 0, 0]);
      // (Not Relu6 itself: tfjs's wasm Relu6 differs from the cpu backend's on the edge values; ours does not, previous test.)
      for (const k of ['relu6Grad', 'sigmoidGrad'] as const)
        expect(
          Array.from(stock[k]).every((v, i) => Object.is(v, ours[k][i])),
          k,
        ).toBe(true);
    } finally {
      useWasmKernels(true);
    }
  });
});
