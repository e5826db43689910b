/** The wasm Transpose kernel: the cpu backend's result for random shapes, permutations and dtypes, no leaks. */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { collapseAxes } from '../../backend/wasm/wasm-transpose.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const shapeAndPerm = fc
  .integer({ min: 1, max: 5 })
  .chain((rank) =>
    fc.tuple(
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: rank, maxLength: rank }),
      fc.shuffledSubarray([...Array(rank).keys()], { minLength: rank, maxLength: rank }),
    ),
  );

async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return f();
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('wasm Transpose', () => {
  it('equals the cpu backend for random shapes and permutations, float32 and int32', async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeAndPerm,
        fc.constantFrom('float32' as const, 'int32' as const),
        async ([shape, perm], dtype) => {
          const n = shape.reduce((a, d) => a * d, 1);
          const values = Array.from({ length: n }, (_, i) =>
            dtype === 'int32' ? i - 7 : Math.sin(i) * 100,
          );
          const ours = tf.tidy(() =>
            tf.transpose(tf.tensor(values, shape, dtype), perm).dataSync(),
          );
          const ref = await onCpu(() =>
            tf.tidy(() => tf.transpose(tf.tensor(values, shape, dtype), perm).dataSync()),
          );
          expect(Array.from(ours)).toEqual(Array.from(ref));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('on a ResNet-sized activation: the filter-gradient permutations, and no tensor left behind', async () => {
    const x = tf.randomNormal([16, 32, 32, 16], 0, 1, 'float32', 1);
    const before = tf.memory().numTensors;
    for (const perm of [
      [3, 1, 2, 0],
      [1, 2, 0, 3],
      [0, 3, 1, 2],
    ]) {
      const ours = tf.tidy(() => tf.transpose(x, perm).dataSync());
      const xs = x.dataSync();
      const ref = await onCpu(() =>
        tf.tidy(() => tf.transpose(tf.tensor(xs, x.shape), perm).dataSync()),
      );
      expect(Array.from(ours)).toEqual(Array.from(ref));
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('merges axes that stay adjacent', () => {
    expect(collapseAxes([2, 3, 4, 5], [0, 1, 2, 3])).toEqual({ shape: [120], perm: [0] });
    expect(collapseAxes([2, 3, 4, 5], [2, 3, 0, 1])).toEqual({ shape: [6, 20], perm: [1, 0] });
    expect(collapseAxes([2, 3, 4, 5], [3, 1, 2, 0])).toEqual({
      shape: [2, 12, 5],
      perm: [2, 1, 0],
    });
  });
});
