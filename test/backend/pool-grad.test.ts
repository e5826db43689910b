import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { stockMaxPoolGrad } from '../../backend/ops/pool-grad.js';
import { Rng } from '../../util/rng.js';
import { randomArray, relErr, expectNoLeak } from '../helpers.js';

interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pad: 'same' | 'valid';
  seed: number;
  /** Values on a coarse grid, so that windows hold ties (the first maximum must win). */
  ties: boolean;
}

const cases = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 12 }),
    w: fc.integer({ min: 1, max: 12 }),
    c: fc.integer({ min: 1, max: 11 }),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    pad: fc.constantFrom('same' as const, 'valid' as const),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    ties: fc.boolean(),
  })
  .filter((c) => c.pad === 'same' || (c.h >= c.kh && c.w >= c.kw));

function inputs(c: Case) {
  const rng = new Rng(c.seed);
  const x = randomArray(c.n * c.h * c.w * c.c, rng);
  if (c.ties) for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i] * 2) / 2;
  return { x, r: randomArray(c.n * c.h * c.w * c.c, rng) };
}

/** y and dx of sum(pool(x) · r) on the current backend. */
function poolGrad(kind: 'max' | 'avg', c: Case, x: Float32Array, r: Float32Array) {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.c]);
    const pool = (t: tf.Tensor) =>
      (kind === 'max' ? tf.maxPool : tf.avgPool)(
        t as tf.Tensor4D,
        [c.kh, c.kw],
        [c.sh, c.sw],
        c.pad,
      );
    const dx = tf.grad((t: tf.Tensor) => {
      const y = pool(t);
      return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
    })(xt);
    return { y: pool(xt).dataSync().slice(), dx: dx.dataSync().slice() };
  });
}

/** The exact gradient of sum(avgPool(x) · r): each window's r over its positions inside the image. */
function exactAvgGrad(c: Case, r: Float32Array): Float32Array {
  const out = (size: number, k: number, s: number) =>
    c.pad === 'same' ? Math.ceil(size / s) : Math.ceil((size - k + 1) / s);
  const [ho, wo] = [out(c.h, c.kh, c.sh), out(c.w, c.kw, c.sw)];
  const padBefore = (size: number, o: number, k: number, s: number) =>
    c.pad === 'same' ? Math.floor(Math.max((o - 1) * s + k - size, 0) / 2) : 0;
  const [top, left] = [padBefore(c.h, ho, c.kh, c.sh), padBefore(c.w, wo, c.kw, c.sw)];
  const dx = new Float64Array(c.n * c.h * c.w * c.c);
  for (let n = 0; n < c.n; n++)
    for (let oh = 0; oh < ho; oh++)
      for (let ow = 0; ow < wo; ow++) {
        const rows = [Math.max(0, oh * c.sh - top), Math.min(c.h, oh * c.sh - top + c.kh)];
        const cols = [Math.max(0, ow * c.sw - left), Math.min(c.w, ow * c.sw - left + c.kw)];
        const count = (rows[1] - rows[0]) * (cols[1] - cols[0]);
        for (let ih = rows[0]; ih < rows[1]; ih++)
          for (let iw = cols[0]; iw < cols[1]; iw++)
            for (let ch = 0; ch < c.c; ch++)
              dx[((n * c.h + ih) * c.w + iw) * c.c + ch] +=
                r[((n * ho + oh) * wo + ow) * c.c + ch] / count;
      }
  return Float32Array.from(dx);
}

async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return f();
  } finally {
    await tf.setBackend('wasm');
  }
}

describe('pooling gradients on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  for (const kernels of [true, false]) {
    const path = kernels ? 'our kernel' : 'without our kernels';
    it(`max pooling: the cpu backend's gradient, ties to the first maximum (${path}, property)`, async () => {
      useWasmKernels(kernels);
      try {
        await fc.assert(
          fc.asyncProperty(cases, async (c) => {
            const { x, r } = inputs(c);
            const ref = await onCpu(() => poolGrad('max', c, x, r));
            const calls = wasmKernelStats('max_pool_grad').calls;
            const got = poolGrad('max', c, x, r);
            expect(wasmKernelStats('max_pool_grad').calls - calls).toBe(kernels ? 1 : 0);
            expect(relErr(got.y, ref.y)).toBe(0);
            // Each dx is a sum of a few r values in window order: equal up to rounding.
            expect(relErr(got.dx, ref.dx)).toBeLessThanOrEqual(1e-6);
          }),
          { numRuns: 60, seed: 77 },
        );
      } finally {
        useWasmKernels(true);
      }
    });

    it(`average pooling: the exact gradient, SAME borders included, on wasm and cpu (${path}, property)`, async () => {
      useWasmKernels(kernels);
      try {
        await fc.assert(
          fc.asyncProperty(cases, async (c) => {
            const { x, r } = inputs(c);
            const ref = await onCpu(() => poolGrad('avg', c, x, r));
            const calls = wasmKernelStats('avg_pool_grad').calls;
            const got = poolGrad('avg', c, x, r);
            expect(wasmKernelStats('avg_pool_grad').calls - calls).toBe(kernels ? 1 : 0);
            const exact = exactAvgGrad(c, r.subarray(0, got.y.length));
            expect(relErr(got.y, ref.y)).toBeLessThanOrEqual(1e-6);
            expect(relErr(got.dx, exact)).toBeLessThanOrEqual(1e-6);
            expect(relErr(ref.dx, exact)).toBeLessThanOrEqual(1e-6);
          }),
          { numRuns: 60, seed: 78 },
        );
      } finally {
        useWasmKernels(true);
      }
    });
  }

  it("tfjs's own average-pool gradient was wrong at SAME borders (what the exact one fixes)", async () => {
    const c: Case = {
      n: 1,
      h: 5,
      w: 5,
      c: 2,
      kh: 3,
      kw: 3,
      sh: 1,
      sw: 1,
      pad: 'same',
      seed: 5,
      ties: false,
    };
    const { r } = inputs(c);
    const stock = await onCpu(() =>
      tf
        .tidy(
          () =>
            tf
              .engine()
              .runKernel(
                'AvgPoolGrad',
                { dy: tf.tensor4d(r.subarray(0, 50), [1, 5, 5, 2]), input: tf.zeros([1, 5, 5, 2]) },
                { filterSize: [3, 3], strides: [1, 1], pad: 'same' },
              ) as tf.Tensor,
        )
        .dataSync()
        .slice(),
    );
    expect(relErr(stock, exactAvgGrad(c, r.subarray(0, 50)))).toBeGreaterThan(0.1);
  });

  it("tfjs's wasm MaxPoolGrad (which ours replaces) drops gradients: a 1x1 pool's is dy itself", () => {
    const c: Case = {
      n: 1,
      h: 1,
      w: 3,
      c: 1,
      kh: 1,
      kw: 1,
      sh: 1,
      sw: 1,
      pad: 'valid',
      seed: 3,
      ties: false,
    };
    const { x, r } = inputs(c);
    const dy = r.subarray(0, 3);
    expect(poolGrad('max', c, x, r).dx).toEqual(dy);
    const stock = tf.tidy(() => {
      const args = {
        inputs: {
          dy: tf.tensor4d(dy, [1, 1, 3, 1]),
          input: tf.tensor4d(x, [1, 1, 3, 1]),
          output: tf.tensor4d(x, [1, 1, 3, 1]),
        },
        attrs: { filterSize: 1, strides: 1, pad: 'valid' },
        backend: tf.backend(),
      };
      const out = stockMaxPoolGrad()(
        args as unknown as Parameters<tf.KernelFunc>[0],
      ) as tf.TensorInfo;
      return tf.engine().makeTensorFromTensorInfo(out).dataSync().slice();
    });
    expect(relErr(stock, dy)).toBeGreaterThan(0.1);
  });

  it('split across the kernel threads by image', async () => {
    const c: Case = {
      n: 16,
      h: 32,
      w: 32,
      c: 16,
      kh: 3,
      kw: 3,
      sh: 2,
      sw: 2,
      pad: 'same',
      seed: 9,
      ties: false,
    };
    const { x, r } = inputs(c);
    const ref = await onCpu(() => ({
      max: poolGrad('max', c, x, r),
      avg: poolGrad('avg', c, x, r),
    }));
    const got = { max: poolGrad('max', c, x, r), avg: poolGrad('avg', c, x, r) };
    for (const k of ['max_pool_grad', 'avg_pool_grad'])
      expect(wasmKernelStats(k).lastThreads).toBe(Math.min(2, getThreadsCount()));
    expect(relErr(got.max.dx, ref.max.dx)).toBeLessThanOrEqual(1e-6);
    expect(relErr(got.avg.dx, exactAvgGrad(c, r))).toBeLessThanOrEqual(1e-6);
  });

  it('frees every intermediate', () => {
    const x = tf.randomNormal([4, 12, 12, 8]) as tf.Tensor4D;
    const step = () =>
      tf.tidy(() => {
        tf.grad((t: tf.Tensor) =>
          tf
            .maxPool(t as tf.Tensor4D, 3, 2, 'same')
            .sum()
            .add(tf.avgPool(t as tf.Tensor4D, 3, 1, 'same').sum()),
        )(x).dataSync();
      });
    expectNoLeak(step);
    x.dispose();
  });
});
