import { beforeAll, describe, expect, it } from 'vitest';
import { expectNoLeak } from '../helpers.js';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';

/** A shape of rank 1-6 and a slice of it (begin, size). */
const slices = fc
  .array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 })
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      ...shape.map((d) =>
        fc
          .integer({ min: 0, max: d - 1 })
          .chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 1, max: d - b }))),
      ),
    ),
  );

const values = (shape: number[], dtype: 'float32' | 'int32') =>
  tf.tidy(() => tf.range(0, tf.util.sizeFromShape(shape), 1, dtype).reshape(shape));

describe('Slice and SplitV on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('slices as tfjs does, float32 and int32, any rank (property)', async () => {
    await fc.assert(
      fc.property(
        slices,
        fc.constantFrom('float32' as const, 'int32' as const),
        ([shape, ...bs], dtype) => {
          const begin = bs.map(([b]) => b);
          const size = bs.map(([, s]) => s);
          const x = values(shape, dtype);
          try {
            const calls = wasmKernelStats('slice_rows').calls;
            const sliced = tf.slice(x, begin, size);
            expect(sliced.dtype).toBe(dtype);
            const got = sliced.dataSync().slice();
            sliced.dispose();
            // More than four outer axes before the contiguous run: the stock kernel.
            let k = shape.length - 1;
            while (k > 0 && size[k] === shape[k]) k--;
            expect(wasmKernelStats('slice_rows').calls - calls).toBe(k > 4 ? 0 : 1);
            const expected = tf.buffer(shape, dtype, x.dataSync() as Float32Array);
            const want: number[] = [];
            const index = new Array<number>(shape.length).fill(0);
            for (let i = 0; i < tf.util.sizeFromShape(size); i++) {
              let r = i;
              for (let d = shape.length - 1; d >= 0; d--) {
                index[d] = begin[d] + (r % size[d]);
                r = Math.floor(r / size[d]);
              }
              want.push(expected.get(...index));
            }
            expect(Array.from(got)).toEqual(want);
          } finally {
            x.dispose();
          }
        },
      ),
      { numRuns: 200, seed: 5 },
    );
  });

  it('int32 slices keep their dtype and values', () => {
    const x = values([3, 4, 5], 'int32');
    const s = tf.slice(x, [1, 1, 0], [2, 2, 5]);
    expect(s.dtype).toBe('int32');
    expect(Array.from(s.dataSync())).toEqual([
      25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
    ]);
    tf.dispose([x, s]);
  });

  it("splits (ConcatV2's gradient) as tfjs's kernel does", () => {
    const x = values([4, 5, 6, 7], 'float32');
    for (const [sizes, axis] of [
      [[2, 5], 3],
      [[1, 3, 2], 2],
      [[3, 1], 0],
    ] as [number[], number][]) {
      const calls = wasmKernelStats('slice_rows').calls;
      const ours = tf.tidy(() => tf.split(x, sizes, axis).map((t) => Array.from(t.dataSync())));
      expect(wasmKernelStats('slice_rows').calls - calls).toBe(sizes.length);
      useWasmKernels(false);
      try {
        expect(
          tf.tidy(() => tf.split(x, sizes, axis).map((t) => Array.from(t.dataSync()))),
        ).toEqual(ours);
      } finally {
        useWasmKernels(true);
      }
    }
    x.dispose();
  });

  it("Mean's gradient equals tfjs-core's formula (dy · ones / n)", () => {
    const x = tf.randomNormal([3, 4, 5, 6], 0, 1, 'float32', 1);
    for (const [axes, keep] of [
      [[1, 2], false],
      [[1, 2], true],
      [[0], false],
      [[3], true],
      [[0, 1, 2, 3], false],
    ] as [number[], boolean][]) {
      const dyShape = tf.tidy(() => tf.mean(x, axes, keep).shape);
      const dy = tf.randomNormal(dyShape, 0, 1, 'float32', 2);
      const ours = tf.tidy(() =>
        tf
          .grad((t: tf.Tensor) => tf.mean(t, axes, keep))(x, dy)
          .dataSync()
          .slice(),
      );
      const formula = tf.tidy(() => {
        const expanded = x.shape.slice();
        for (const a of axes) expanded[a] = 1;
        const n = axes.reduce((p, a) => p * x.shape[a], 1);
        return tf
          .div(tf.mul(tf.reshape(dy, expanded), tf.ones(x.shape)), n)
          .dataSync()
          .slice();
      });
      expect(Array.from(ours)).toEqual(Array.from(formula));
      dy.dispose();
    }
    x.dispose();
  });

  it('frees every intermediate', () => {
    const x = tf.randomNormal([8, 9, 9, 16]);
    const step = () =>
      tf.tidy(
        () =>
          void tf
            .grad((t: tf.Tensor) =>
              tf
                .concat(
                  tf.split(
                    tf.pad(t, [
                      [0, 0],
                      [0, 1],
                      [0, 1],
                      [0, 0],
                    ]),
                    [6, 10],
                    3,
                  ),
                  3,
                )
                .mean([1, 2])
                .sum(),
            )(x)
            .dataSync(),
      );
    expectNoLeak(step);
    x.dispose();
  });
});
