import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray, relErr } from '../helpers.js';

interface Case {
  shape: number[];
  statShape?: number[]; // default [C]
  scale: boolean;
  offset: boolean;
}

/** Inference BatchNorm on the current backend, from fixed data. */
function batchNorm(c: Case, data: Record<string, Float32Array>): Float32Array {
  const C = c.shape[c.shape.length - 1];
  const stat = c.statShape ?? [C];
  return tf.tidy(() => {
    const x = tf.tensor(data.x, c.shape) as tf.Tensor4D;
    const t = (k: string) => tf.tensor(data[k], stat) as tf.Tensor1D;
    return tf
      .batchNorm(
        x,
        t('mean'),
        t('variance'),
        c.offset ? t('offset') : undefined,
        c.scale ? t('scale') : undefined,
        1e-3,
      )
      .dataSync()
      .slice() as Float32Array;
  });
}

function randomData(c: Case, seed: number): Record<string, Float32Array> {
  const rng = new Rng(seed);
  const C = c.shape[c.shape.length - 1];
  return {
    x: randomArray(tf.util.sizeFromShape(c.shape), rng),
    mean: randomArray(C, rng),
    variance: randomArray(C, rng).map((v) => 0.2 + Math.abs(v)),
    offset: randomArray(C, rng),
    scale: randomArray(C, rng),
  };
}

describe('inference BatchNorm on our wasm kernel', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  const cases: [string, Case, boolean][] = [
    [
      'a ResNet activation with scale and offset',
      { shape: [8, 16, 16, 16], scale: true, offset: true },
      true,
    ],
    [
      '7 channels (a SIMD tail), no scale',
      { shape: [3, 5, 4, 7], scale: false, offset: true },
      true,
    ],
    ['2-D input, no offset', { shape: [33, 12], scale: true, offset: false }, true],
    [
      "statistics of the input's rank (stock kernel)",
      { shape: [2, 3, 3, 8], statShape: [1, 1, 1, 8], scale: true, offset: true },
      false,
    ],
  ];

  for (const [name, c, ours] of cases) {
    it(`equals the cpu backend: ${name}`, async () => {
      const data = randomData(c, 7);
      await tf.setBackend('cpu');
      const ref = batchNorm(c, data);
      await tf.setBackend('wasm');
      const calls = wasmKernelStats('channel_affine').calls;
      expect(relErr(batchNorm(c, data), ref)).toBeLessThan(1e-6);
      expect(wasmKernelStats('channel_affine').calls - calls).toBe(ours ? 1 : 0);
    });
  }

  it('falls back to the stock kernel without our kernels, with the same values', async () => {
    const c: Case = { shape: [4, 6, 6, 8], scale: true, offset: true };
    const data = randomData(c, 8);
    const ours = batchNorm(c, data);
    useWasmKernels(false);
    try {
      const calls = wasmKernelStats('channel_affine').calls;
      expect(relErr(batchNorm(c, data), ours)).toBeLessThan(1e-6);
      expect(wasmKernelStats('channel_affine').calls).toBe(calls);
    } finally {
      useWasmKernels(true);
    }
  });

  it('leaves no tensor or heap buffer behind', () => {
    const c: Case = { shape: [16, 32, 32, 16], scale: true, offset: true }; // large enough for 2 threads
    const data = randomData(c, 9);
    batchNorm(c, data);
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    batchNorm(c, data);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(buffers);
  });
});
