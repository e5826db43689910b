import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { channelPattern } from '../../backend/wasm/wasm-broadcast.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray } from '../helpers.js';

const OPS = ['add', 'sub', 'mul', 'div'] as const;

/** An output shape and a broadcasting operand's shape: per channel, per image and channel, or another pattern. */
const shapes = fc
  .tuple(
    fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 2, maxLength: 5 }),
    fc.integer({ min: 0, max: 4 }),
    fc.boolean(),
  )
  .map(([full, kind, dropLeading]) => {
    const rank = full.length;
    let small: number[];
    if (kind === 0)
      small = [full[rank - 1]]; // [C]
    else if (kind === 1)
      small = full.map((d, i) => (i === 0 || i === rank - 1 ? d : 1)); // [N, 1, 1, C]
    else if (kind === 2)
      small = full.map((d, i) => (i === rank - 1 ? 1 : d)); // [N, H, W, 1]: not ours
    else if (kind === 3)
      small = full.map((d, i) => (i === rank - 2 ? d : 1)); // [1, W, 1]-like: not ours
    else small = [1]; // a scalar: the stock kernel
    if (dropLeading && kind === 0) small = [...new Array<number>(rank - 1).fill(1), full[rank - 1]];
    return { full, small };
  });

function compute(op: (typeof OPS)[number], a: tf.Tensor, b: tf.Tensor): Float32Array {
  return tf.tidy(() => tf[op](a, b).dataSync() as Float32Array).slice();
}

describe('broadcasting Add, Sub, Multiply, RealDiv on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('recognises the per-channel and per-image patterns only', () => {
    expect(channelPattern([8, 4, 4, 3], [3])).toEqual({
      outer: 1,
      mid: 128,
      C: 3,
      perOuter: false,
    });
    expect(channelPattern([8, 4, 4, 3], [1, 1, 1, 3])).toEqual({
      outer: 1,
      mid: 128,
      C: 3,
      perOuter: false,
    });
    expect(channelPattern([8, 4, 4, 3], [8, 1, 1, 3])).toEqual({
      outer: 8,
      mid: 16,
      C: 3,
      perOuter: true,
    });
    expect(channelPattern([8, 4, 4, 3], [8, 4, 1, 3])).toEqual({
      outer: 32,
      mid: 4,
      C: 3,
      perOuter: true,
    });
    expect(channelPattern([8, 4, 4, 3], [8, 4, 4, 1])).toBeNull();
    expect(channelPattern([8, 4, 4, 3], [1, 4, 1, 3])).toBeNull();
    expect(channelPattern([8, 4, 4, 3], [8, 4, 4, 3])).toBeNull();
    expect(channelPattern([8, 3], [3])).toEqual({ outer: 1, mid: 8, C: 3, perOuter: false });
  });

  it("give the cpu backend's values, both operand orders (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        shapes,
        fc.constantFrom(...OPS),
        fc.boolean(),
        fc.integer({ min: 1, max: 1 << 30 }),
        async ({ full, small }, op, swap, seed) => {
          const rng = new Rng(seed);
          const f = randomArray(
            full.reduce((x, y) => x * y, 1),
            rng,
          );
          // Divisors away from zero; a few exact zeros elsewhere (signed results, inf and NaN for div).
          const s = randomArray(
            small.reduce((x, y) => x * y, 1),
            rng,
          ).map((v, i) => (op === 'div' ? v + Math.sign(v || 1) * 0.5 : i % 7 === 3 ? 0 : v));
          const [aShape, bShape, a, b] = swap ? [small, full, s, f] : [full, small, f, s];
          await tf.setBackend('cpu');
          const ref = compute(op, tf.tensor(a, aShape), tf.tensor(b, bShape));
          await tf.setBackend('wasm');
          const ours = channelPattern(full, small) !== null;
          const calls = wasmKernelStats('channel_binary').calls;
          const got = tf.tidy(() => compute(op, tf.tensor(a, aShape), tf.tensor(b, bShape)));
          expect(wasmKernelStats('channel_binary').calls - calls).toBe(ours ? 1 : 0);
          expect(got.length).toBe(ref.length);
          // IEEE single precision on both sides: equal, division to the last bit.
          const bad = Array.from(got).findIndex((v, i) =>
            op === 'div'
              ? !(Math.abs(v - ref[i]) <= Math.abs(ref[i]) * 1.2e-7) && !Object.is(v, ref[i])
              : !Object.is(v, ref[i]),
          );
          expect(bad, `${got[bad]} vs ${ref[bad]}`).toBe(-1);
        },
      ),
      { numRuns: 150, seed: 31 },
    );
  });

  it('splits large tensors across the kernel threads; without our kernels the stock ones run', () => {
    const a = tf.tidy(() => tf.sin(tf.range(0, 32 * 32 * 32 * 16)).reshape([32, 32, 32, 16])); // (JS random numbers would take seconds)
    const b = tf.tidy(() =>
      tf
        .cos(tf.range(0, 32 * 16))
        .abs()
        .add(0.5)
        .reshape([32, 1, 1, 16]),
    );
    const ours = tf.tidy(() => tf.div(a, b).dataSync().slice());
    expect(wasmKernelStats('channel_binary').lastThreads).toBe(Math.min(2, getThreadsCount()));
    useWasmKernels(false);
    const calls = wasmKernelStats('channel_binary').calls;
    try {
      const stock = tf.tidy(() => tf.div(a, b).dataSync().slice());
      expect(wasmKernelStats('channel_binary').calls).toBe(calls);
      expect(
        Array.from(stock).findIndex((v, i) => !(Math.abs(ours[i] - v) <= Math.abs(v) * 1.2e-7)),
      ).toBe(-1);
    } finally {
      useWasmKernels(true);
      tf.dispose([a, b]);
    }
  });
});
