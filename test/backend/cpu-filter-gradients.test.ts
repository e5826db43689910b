/**
 * The test-only filter-gradient loops (test/cpu-filter-gradients.ts) give tfjs's cpu kernels'
 * values, so the tests that take them as the cpu reference still compare with the cpu backend.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { useFastCpuFilterGradients } from '../cpu-filter-gradients.js';
import { Rng } from '../../util/rng.js';
import { randomArray, relErr } from '../helpers.js';

interface Case {
  depthwise: boolean;
  n: number;
  h: number;
  w: number;
  cin: number;
  m: number;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
}

/** dW by the cpu backend's kernel for `c` (the stock one, or ours when `fast`). */
function filterGradient(c: Case, fast: boolean): Float32Array {
  const restore = fast ? useFastCpuFilterGradients() : () => {};
  try {
    return tf.tidy(() => {
      const rng = new Rng(c.n * 1000 + c.h * 10 + c.k);
      const x = tf.tensor4d(randomArray(c.n * c.h * c.w * c.cin, rng), [c.n, c.h, c.w, c.cin]);
      const filterShape: [number, number, number, number] = [c.k, c.k, c.cin, c.m];
      const y = c.depthwise
        ? tf.depthwiseConv2d(x, tf.zeros(filterShape), c.stride, c.pad)
        : tf.conv2d(x, tf.zeros(filterShape), c.stride, c.pad);
      const dy = tf.tensor(randomArray(y.size, rng), y.shape);
      const name = c.depthwise ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter';
      const attrs = {
        strides: c.stride,
        pad: c.pad,
        dataFormat: 'NHWC',
        dilations: 1,
        filterShape,
      };
      const dw = tf.engine().runKernel(name, { x, dy }, attrs as never) as tf.Tensor;
      return dw.dataSync() as Float32Array;
    });
  } finally {
    restore();
  }
}

describe('fast cpu filter gradients (test reference)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('equal tfjs cpu kernels on random shapes, strides and paddings', () => {
    fc.assert(
      fc.property(
        fc.record({
          depthwise: fc.boolean(),
          n: fc.integer({ min: 1, max: 3 }),
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 9 }),
          cin: fc.integer({ min: 1, max: 5 }),
          m: fc.integer({ min: 1, max: 4 }),
          k: fc.integer({ min: 1, max: 4 }),
          stride: fc.integer({ min: 1, max: 3 }),
          pad: fc.constantFrom('same' as const, 'valid' as const),
        }),
        (c) => {
          // a valid conv larger than its input has no output
          fc.pre(c.pad === 'same' || c.k <= Math.min(c.h, c.w));
          const stock = filterGradient(c, false);
          const fast = filterGradient(c, true);
          expect(fast.length).toBe(stock.length);
          expect(relErr(fast, stock)).toBeLessThanOrEqual(1e-6);
        },
      ),
      { numRuns: 60, seed: 3 },
    );
  });

  it('restores the stock kernels', () => {
    const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    const restore = useFastCpuFilterGradients();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).not.toBe(stock);
    restore();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(stock);
  });
});
