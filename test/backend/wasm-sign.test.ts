import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray } from '../helpers.js';

const sign = (x: Float32Array | Int32Array, dtype: 'float32' | 'int32' = 'float32') =>
  tf.tidy(() => Array.from(tf.sign(tf.tensor1d(x, dtype)).dataSync()));

describe('Sign on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  // Gradients far below float32's epsilon (1.2e-7) included: tfjs's wasm Sign returned 0 for them.
  const x = new Float32Array([
    2,
    -3,
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    1e-7,
    -1e-7,
    1e-10,
    -1e-20,
    1e-40,
    -1e-45,
    5,
    -5,
  ]);

  for (const kernels of [true, false])
    it(`equals the cpu backend's sign, tiny values, NaN and zeros included${kernels ? '' : ' (without our kernels)'}`, async () => {
      await tf.setBackend('cpu');
      const ref = sign(x);
      expect(ref.slice(7, 13)).toEqual([1, -1, 1, -1, 1, -1]);
      await tf.setBackend('wasm');
      useWasmKernels(kernels);
      try {
        const calls = wasmKernelStats('sign').calls;
        expect(sign(x)).toEqual(ref);
        expect(wasmKernelStats('sign').calls - calls).toBe(kernels ? 1 : 0);
      } finally {
        useWasmKernels(true);
      }
    });

  it("int32 tensors keep tfjs's kernel", () => {
    expect(sign(new Int32Array([3, 0, -2]), 'int32')).toEqual([1, 0, -1]);
  });

  it('splits a large tensor across threads, with the same result and nothing left behind', async () => {
    const xs = randomArray(2 ** 20, new Rng(3)).map((v) => v * 1e-9);
    await tf.setBackend('cpu');
    const ref = sign(xs);
    await tf.setBackend('wasm');
    sign(xs);
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    expect(sign(xs)).toEqual(ref);
    expect(wasmKernelStats('sign').lastThreads).toBe(Math.min(2, getThreadsCount()));
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(buffers);
  });
});
