/**
 * Sums over rows on our wasm kernels — filter gradients (direct, Winograd F(4x4) and F(2x2),
 * depthwise) and training-mode batch-norm statistics — are cut into chunks by the shape alone and
 * added in chunk order: bit for bit the same on 1, 2 or 3 threads and from run to run, and still
 * the cpu backend's numbers within the usual tolerance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { useKernelThreads, useWinograd, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { batchNormTraining } from '../../backend/ops/batchnorm-train.js';
import { Rng } from '../../util/rng.js';
import { useFastCpuFilterGradients } from '../cpu-filter-gradients.js';
import { randomArray, relErr } from '../helpers.js';

// Thread counts and runs on each: 2 threads twice (which rows a thread takes is a race there).
const RUNS = [1, 2, 2, 3];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** The first index where a and b differ in their bits, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const [p, q] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer)];
  if (a.length !== b.length) return 0;
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return i;
  return -1;
}

/**
 * Runs `compute` on each of RUNS' thread counts and expects every result bitwise equal to the first;
 * `kernel` must have run on all the threads it was given (so the sum had at least that many chunks).
 */
function sameOnAllThreads(kernel: string, compute: () => Float32Array[]): Float32Array[] {
  let first: Float32Array[] | null = null;
  try {
    for (const [run, threads] of RUNS.entries()) {
      useKernelThreads(threads);
      const got = compute();
      expect(wasmKernelStats(kernel).lastThreads, `${kernel} on ${threads} threads`).toBe(threads);
      first ??= got;
      got.forEach((g, i) =>
        expect(firstDifference(g, first![i]), `output ${i}, run ${run} (${threads} threads)`).toBe(
          -1,
        ),
      );
    }
  } finally {
    useKernelThreads(null);
  }
  return first!;
}

/** dW of sum(conv(x, w) * r) (conv2d or depthwise), and for depthwise dx too (its own kernel's). */
function convGrads(
  depthwise: boolean,
  x: Float32Array,
  w: Float32Array,
  r: Float32Array,
  xs: number[],
  ws: number[],
  stride: number,
): Float32Array[] {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, xs as [number, number, number, number]);
    const wt = tf.tensor4d(w, ws as [number, number, number, number]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) => {
      const y = depthwise
        ? tf.depthwiseConv2d(a, b, stride, 'same')
        : tf.conv2d(a, b, stride, 'same');
      return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
    };
    if (!depthwise)
      return [
        tf
          .grad((b: tf.Tensor) => f(xt, b as tf.Tensor4D))(wt)
          .dataSync() as Float32Array,
      ];
    const [dx, dw] = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([xt, wt]);
    return [dw.dataSync() as Float32Array, dx.dataSync() as Float32Array];
  });
}

let restoreCpuKernels = () => {};

describe('sums over rows are the same on any number of kernel threads', () => {
  beforeAll(async () => {
    // the cpu reference's filter gradients without tfjs's per-tap TensorBuffer reads (same values)
    restoreCpuKernels = useFastCpuFilterGradients();
    // A threaded heap (shared memory), on which the kernel pool can be given any thread count.
    await initBackend({ backend: 'wasm', threads: 2 });
  });
  afterAll(() => {
    restoreCpuKernels();
    useWinograd(true, 4);
  });

  // Winograd 0: the direct kernel (stride 2 never takes Winograd; stride 1 with it off).
  const convs = [
    {
      name: 'conv2d_filter_grad',
      winograd: 0,
      n: 8,
      h: 24,
      cin: 13,
      cout: 22,
      stride: 1,
      tol: 1e-4,
    },
    {
      name: 'conv2d_filter_grad',
      winograd: 4,
      n: 16,
      h: 25,
      cin: 16,
      cout: 24,
      stride: 2,
      tol: 1e-4,
    },
    // 32 input channels or more: x and dy packed in each thread's scratch
    {
      name: 'conv2d_filter_grad',
      winograd: 4,
      n: 16,
      h: 17,
      cin: 36,
      cout: 22,
      stride: 2,
      tol: 1e-4,
    },
    {
      name: 'winograd4_filter_grad',
      winograd: 4,
      n: 16,
      h: 16,
      cin: 16,
      cout: 48,
      stride: 1,
      tol: 3e-5,
    },
    // one chunk (a wide layer at a small batch): the threads share its 36 matrices
    {
      name: 'winograd4_filter_grad',
      winograd: 4,
      n: 12,
      h: 8,
      cin: 64,
      cout: 64,
      stride: 1,
      tol: 3e-5,
    },
    {
      name: 'winograd_filter_grad',
      winograd: 2,
      n: 16,
      h: 16,
      cin: 16,
      cout: 32,
      stride: 1,
      tol: 1e-5,
    },
  ] as const;
  for (const c of convs) {
    it(`${c.name}: ${c.n}×${c.h}×${c.h}, ${c.cin}→${c.cout}, stride ${c.stride}`, async () => {
      const rng = new Rng(c.n * 100 + c.cin);
      const xs = [c.n, c.h, c.h, c.cin];
      const ws = [3, 3, c.cin, c.cout];
      const x = randomArray(size(xs), rng);
      const w = randomArray(size(ws), rng);
      const r = randomArray(c.n * c.h * c.h * c.cout, rng);
      await tf.setBackend('cpu');
      const [dwRef] = convGrads(false, x, w, r, xs, ws, c.stride);
      await tf.setBackend('wasm');
      useWinograd(c.winograd !== 0, c.winograd === 2 ? 2 : 4);
      const [dw] = sameOnAllThreads(c.name, () => convGrads(false, x, w, r, xs, ws, c.stride));
      expect(relErr(dw, dwRef)).toBeLessThanOrEqual(c.tol);
    });
  }

  // Not a sum, but shared out the same way: F(4x4)'s filter transform, which forward and dx run on
  // every call, split by 8-channel output blocks (each computed by one thread, whole).
  it('winograd4_filter: forward and dx of a 3x3 conv, 128→160', async () => {
    const rng = new Rng(11);
    const xs = [2, 8, 8, 128];
    const ws = [3, 3, 128, 160];
    const x = randomArray(size(xs), rng);
    const w = randomArray(size(ws), rng);
    const r = randomArray(2 * 8 * 8 * 160, rng);
    const run = () =>
      tf.tidy(() => {
        const [xt, wt, rt] = [tf.tensor(x, xs), tf.tensor(w, ws), tf.tensor(r, [2, 8, 8, 160])];
        const f = (a: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, wt as tf.Tensor4D, 1, 'same');
        const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), rt)))(xt);
        return [f(xt), dx].map((t) => t.dataSync() as Float32Array);
      });
    await tf.setBackend('cpu');
    const ref = run();
    await tf.setBackend('wasm');
    useWinograd(true, 4);
    const got = sameOnAllThreads('winograd4_filter', run);
    got.forEach((g, i) => expect(relErr(g, ref[i]), `output ${i}`).toBeLessThanOrEqual(3e-5));
  });

  it('depthwise_filter_grad: 24×32×32×32, 3x3', async () => {
    const rng = new Rng(5);
    const xs = [24, 32, 32, 32];
    const ws = [3, 3, 32, 1];
    const x = randomArray(size(xs), rng);
    const w = randomArray(size(ws), rng);
    const r = randomArray(size(xs), rng);
    await tf.setBackend('cpu');
    const [dwRef, dxRef] = convGrads(true, x, w, r, xs, ws, 1);
    await tf.setBackend('wasm');
    const [dw, dx] = sameOnAllThreads('depthwise_filter_grad', () =>
      convGrads(true, x, w, r, xs, ws, 1),
    );
    expect(relErr(dw, dwRef)).toBeLessThanOrEqual(1e-5);
    expect(relErr(dx, dxRef)).toBeLessThanOrEqual(1e-5);
  });

  it('channel_sums (training-mode batch norm): statistics, y and the gradients', () => {
    const shape = [16, 32, 32, 48];
    const rng = new Rng(9);
    const xv = randomArray(size(shape), rng).map((v) => 3 * v + 1);
    const rv = randomArray(size(shape), rng);
    const gv = randomArray(48, rng).map((v) => 1 + v / 4);
    const bv = randomArray(48, rng);
    /** mean, variance, y, dx, dγ, dβ of sum(BN(x) * r); `jsLoops`: the JS loops (the reference). */
    const run = (jsLoops: boolean) =>
      tf.tidy(() => {
        const [x, r] = [tf.tensor(xv, shape), tf.tensor(rv, shape)];
        const [gamma, beta] = [tf.tensor1d(gv), tf.tensor1d(bv)];
        const bn = batchNormTraining(x, gamma, beta, 1e-3, { jsLoops });
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(
              batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3, { jsLoops }).y,
              r,
            ),
          );
        const grads = tf.grads(f)([x, gamma, beta]);
        return [bn.mean, bn.variance, bn.y, ...grads].map((t) => t.dataSync() as Float32Array);
      });
    const ref = run(true);
    const got = sameOnAllThreads('channel_sums', () => run(false));
    got.forEach((g, i) => expect(relErr(g, ref[i]), `output ${i}`).toBeLessThanOrEqual(1e-5));
  });
});
