/** Tile on wasm (backend/wasm/wasm-tile.ts): every element where tiling puts it, any rank and dtype. */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { tileInto, wasmTileRegistered } from '../../backend/wasm/wasm-tile.js';
import { SUITE_THREADS } from '../helpers.js';

/** out[i] = x[i mod shape] by index arithmetic: the definition of Tile. */
function tileByIndex(x: number[], shape: number[], reps: number[]): number[] {
  const outShape = shape.map((d, i) => d * reps[i]);
  const out: number[] = [];
  const size = outShape.reduce((a, d) => a * d, 1);
  for (let o = 0; o < size; o++) {
    let rest = o;
    let at = 0;
    let stride = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      const idx = rest % outShape[i];
      rest = Math.floor(rest / outShape[i]);
      at += (idx % shape[i]) * stride;
      stride *= shape[i];
    }
    out.push(x[at]);
  }
  return out;
}

const shapesAndReps = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 4 })), {
    minLength: 1,
    maxLength: 5,
  })
  .map((axes) => ({ shape: axes.map(([d]) => d), reps: axes.map(([, r]) => r) }));

describe('Tile on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  });

  it('tileInto puts every value where Tile’s definition does (property, sizes 0–4, reps 1–4)', () => {
    fc.assert(
      fc.property(shapesAndReps, ({ shape, reps }) => {
        const n = shape.reduce((a, d) => a * d, 1);
        const x = Array.from({ length: n }, (_, i) => i + 1);
        const out = new Int32Array(shape.reduce((a, d, i) => a * d * reps[i], 1));
        tileInto(x, shape, reps, out);
        expect(Array.from(out)).toEqual(tileByIndex(x, shape, reps));
      }),
      { numRuns: 300 },
    );
  });

  it('the registered kernel: float32 bits (NaN, −0, ±inf), int32, bool, and the per-example mask of tf.where', () => {
    const f = tf.tensor3d([NaN, -0, Infinity, -Infinity, 1.5, 3e-42], [1, 3, 2]);
    const tiled = tf.tile(f, [2, 1, 3]);
    expect(tiled.shape).toEqual([2, 3, 6]);
    const want = tileByIndex(Array.from(f.dataSync()), [1, 3, 2], [2, 1, 3]);
    const got = Array.from(tiled.dataSync());
    got.forEach((v, i) => expect(Object.is(v, want[i]), `${i}: ${v} vs ${want[i]}`).toBe(true));
    const ints = tf.tensor2d([1, -2, 3, 2147483647], [2, 2], 'int32');
    expect(Array.from(tf.tile(ints, [2, 2]).dataSync())).toEqual(
      tileByIndex([1, -2, 3, 2147483647], [2, 2], [2, 2]),
    );
    const mask = tf.tensor1d([true, false, true], 'bool');
    const spread = mask.reshape([-1, 1, 1, 1]).tile([1, 4, 4, 3]);
    expect(spread.dtype).toBe('bool');
    const a = tf.fill([3, 4, 4, 3], 1);
    const b = tf.fill([3, 4, 4, 3], 2);
    const picked = tf.where(spread, a, b).sum([1, 2, 3]);
    expect(Array.from(picked.dataSync())).toEqual([48, 96, 48]);
    tf.dispose([f, tiled, ints, mask, spread, a, b, picked]);
  });

  it('is the registered wasm kernel, and tf.tile through it agrees (property)', () => {
    expect(wasmTileRegistered()).toBe(true);
    fc.assert(
      fc.property(shapesAndReps, ({ shape, reps }) => {
        const n = shape.reduce((a, d) => a * d, 1);
        const x = tf.range(0, n, 1, 'float32').reshape(shape);
        const t = tf.tile(x, reps);
        expect(Array.from(t.dataSync())).toEqual(
          tileByIndex(Array.from(x.dataSync()), shape, reps),
        );
        tf.dispose([x, t]);
      }),
      { numRuns: 100 },
    );
  });
});
