import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray } from '../helpers.js';

/** relu(x), on the current backend. */
const relu = (x: Float32Array, r: Float32Array, shape: number[]) =>
  tf.tidy(() => tf.relu(tf.tensor(x, shape)).dataSync().slice() as Float32Array);

/** d/dx of sum(relu(x) · r), on the current backend. */
const reluGrad = (x: Float32Array, r: Float32Array, shape: number[]) =>
  tf.tidy(
    () =>
      tf
        .grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), tf.tensor(r, shape))))(
          tf.tensor(x, shape),
        )
        .dataSync()
        .slice() as Float32Array,
  );

/** Same values, NaN where NaN, and the same sign of zero. */
function expectSame(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) expect([i, a[i]]).toEqual([i, b[i]]);
}

describe('ReLU and its gradient on our wasm kernels', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Every special value against every other, in both operands: what tfjs's Multiply(dy, Step(x)) gives.
  const special = [2, -3, 0, -0, NaN, Infinity, -Infinity, 1e-40];
  const x = new Float32Array(special.flatMap((a) => special.map(() => a)).concat([5, -5, 0]));
  const r = new Float32Array(special.flatMap(() => special).concat([NaN, Infinity, 7]));

  // Each pass as the test calls it, and the C kernel it must run.
  const passes = [
    { name: 'ReLU', kernel: 'relu', run: relu },
    { name: 'the ReLU gradient', kernel: 'relu_grad', run: reluGrad },
  ];

  for (const { name, kernel, run } of passes)
    for (const kernels of [true, false]) {
      it(`${name} equals the cpu backend's, NaN, infinities and signed zeros included${kernels ? '' : ' (tfjs kernels)'}`, async () => {
        await tf.setBackend('cpu');
        const ref = run(x, r, [x.length]);
        await tf.setBackend('wasm');
        useWasmKernels(kernels);
        try {
          const calls = wasmKernelStats(kernel).calls;
          expectSame(run(x, r, [x.length]), ref);
          expect(wasmKernelStats(kernel).calls - calls).toBe(kernels ? 1 : 0);
        } finally {
          useWasmKernels(true);
        }
      });
    }

  for (const { name, kernel, run } of passes)
    it(`${name} splits a large activation across threads, with the same result and nothing left behind`, async () => {
      const rng = new Rng(5);
      const shape = [16, 32, 32, 64]; // 2^20 floats, as in a ResNet
      const xs = randomArray(2 ** 20, rng);
      const rs = randomArray(2 ** 20, rng);
      await tf.setBackend('cpu');
      const ref = run(xs, rs, shape);
      await tf.setBackend('wasm');
      run(xs, rs, shape);
      const tensors = tf.memory().numTensors;
      const buffers = tf.backend().numDataIds();
      expectSame(run(xs, rs, shape), ref);
      expect(wasmKernelStats(kernel).lastThreads).toBe(Math.min(2, getThreadsCount()));
      expect(tf.memory().numTensors).toBe(tensors);
      expect(tf.backend().numDataIds()).toBe(buffers);
    });
});
