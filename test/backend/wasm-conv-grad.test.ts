import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { wasmConvGradientKernels } from '../../backend/wasm/wasm-conv-grad.js';
import { useWasmKernels, useWinograd, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { sourceSha256 } from '../../backend/wasm/kernels/kernels.wasm.js';
import crypto from 'node:crypto';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import { Rng } from '../../util/rng.js';
import { useFastCpuFilterGradients } from '../cpu-filter-gradients.js';
import { randomArray, relErr, expectNoLeak } from '../helpers.js';

/** Gradients of sum(conv(x, w) * r) w.r.t. x and w, on the current backend. */
function convGrads(
  x: Float32Array,
  w: Float32Array,
  r: Float32Array,
  xs: number[],
  ws: number[],
  stride: number,
  pad: 'same' | 'valid',
) {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, xs as [number, number, number, number]);
    const wt = tf.tensor4d(w, ws as [number, number, number, number]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) => {
      const y = tf.conv2d(a, b, stride, pad);
      return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
    };
    const [dx, dw] = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([xt, wt]);
    return [
      dx.dataSync().slice(),
      dw.dataSync().slice(),
      tf.conv2d(xt, wt, stride, pad).dataSync().slice(),
    ];
  });
}

const KERNELS = ['conv2d', 'conv2d_backprop_input', 'conv2d_filter_grad'];

let restoreCpuKernels = () => {};

describe('wasm convolutions and their gradients match the cpu backend', () => {
  beforeAll(async () => {
    // the cpu reference's filter gradients without tfjs's per-tap TensorBuffer reads (same values)
    restoreCpuKernels = useFastCpuFilterGradients();
    await initBackend({ backend: 'wasm' });
  });
  afterAll(() => restoreCpuKernels());

  it('replaces the stock wasm kernels with ours', () => {
    for (const k of wasmConvGradientKernels)
      expect(tf.getKernel(k.kernelName, 'wasm')?.kernelFunc).toBe(k.kernelFunc);
  });

  const cases = [
    { k: 3, stride: 1, pad: 'same' as const, h: 9, cin: 5, cout: 7 },
    { k: 3, stride: 2, pad: 'same' as const, h: 10, cin: 4, cout: 6 },
    { k: 3, stride: 2, pad: 'same' as const, h: 9, cin: 3, cout: 8 },
    { k: 1, stride: 1, pad: 'same' as const, h: 8, cin: 6, cout: 5 },
    { k: 1, stride: 2, pad: 'same' as const, h: 8, cin: 6, cout: 10 },
    { k: 1, stride: 2, pad: 'valid' as const, h: 7, cin: 3, cout: 4 },
    { k: 3, stride: 1, pad: 'valid' as const, h: 8, cin: 2, cout: 3 },
    { k: 3, stride: 2, pad: 'valid' as const, h: 8, cin: 2, cout: 3 },
    { k: 5, stride: 2, pad: 'same' as const, h: 11, cin: 3, cout: 4 },
    { k: 3, stride: 3, pad: 'same' as const, h: 10, cin: 2, cout: 5 },
    { k: 2, stride: 2, pad: 'valid' as const, h: 9, cin: 4, cout: 3 },
    { k: 1, stride: 3, pad: 'valid' as const, h: 10, cin: 3, cout: 2 },
  ];
  // Both filter-gradient paths: our SIMD kernel and the XNNPACK formulation it falls back to.
  for (const kernel of [true, false]) {
    for (const c of cases) {
      it(`${c.k}x${c.k} stride ${c.stride} ${c.pad}, ${c.h}x${c.h}, ${c.cin}→${c.cout}${kernel ? '' : ' (XNNPACK, without our kernels)'}`, async () => {
        const rng = new Rng(c.k * 100 + c.stride * 10 + c.h);
        const xs = [3, c.h, c.h + 1, c.cin];
        const ws = [c.k, c.k, c.cin, c.cout];
        const x = randomArray(
          xs.reduce((a, b) => a * b),
          rng,
        );
        const w = randomArray(
          ws.reduce((a, b) => a * b),
          rng,
        );
        const r = randomArray(3 * c.h * (c.h + 1) * c.cout, rng);
        await tf.setBackend('cpu');
        const [dxRef, dwRef, yRef] = convGrads(x, w, r, xs, ws, c.stride, c.pad);
        await tf.setBackend('wasm');
        useWasmKernels(kernel);
        const before = KERNELS.map((name) => wasmKernelStats(name).calls);
        try {
          const [dx, dw, y] = convGrads(x, w, r, xs, ws, c.stride, c.pad);
          // The gradient runs the forward conv once more (tf.grads), then dx and dW once each.
          expect(KERNELS.map((name, i) => wasmKernelStats(name).calls - before[i])).toEqual(
            kernel ? [2, 1, 1] : [0, 0, 0],
          );
          expect(relErr(y, yRef)).toBeLessThanOrEqual(1e-4);
          expect(dx.length).toBe(dxRef.length);
          expect(dw.length).toBe(dwRef.length);
          expect(relErr(dx, dxRef)).toBeLessThanOrEqual(1e-4);
          expect(relErr(dw, dwRef)).toBeLessThanOrEqual(1e-4);
        } finally {
          useWasmKernels(true);
        }
      });
    }
  }

  // Large enough to be split across threads; channel counts that take every tile shape and tail.
  const wide = [
    { n: 8, h: 16, k: 3, stride: 1, cin: 16, cout: 16 },
    { n: 12, h: 23, k: 3, stride: 2, cin: 13, cout: 22 },
    { n: 12, h: 14, k: 3, stride: 1, cin: 18, cout: 12 },
    { n: 8, h: 32, k: 1, stride: 2, cin: 32, cout: 64 },
  ];
  for (const c of wide) {
    it(`conv, dx and dW across threads: ${c.n}×${c.h}×${c.h}, ${c.k}x${c.k} stride ${c.stride}, ${c.cin}→${c.cout}`, async () => {
      const rng = new Rng(c.n * 1000 + c.cin * 10 + c.cout);
      const xs = [c.n, c.h, c.h, c.cin];
      const ws = [c.k, c.k, c.cin, c.cout];
      const x = randomArray(
        xs.reduce((a, b) => a * b),
        rng,
      );
      const w = randomArray(
        ws.reduce((a, b) => a * b),
        rng,
      );
      const r = randomArray(c.n * c.h * c.h * c.cout, rng);
      await tf.setBackend('cpu');
      const [dxRef, dwRef, yRef] = convGrads(x, w, r, xs, ws, c.stride, 'same');
      await tf.setBackend('wasm');
      useWinograd(false); // the direct kernels here; Winograd has its own tests below
      try {
        const before = KERNELS.map((name) => wasmKernelStats(name).calls);
        const [dx, dw, y] = convGrads(x, w, r, xs, ws, c.stride, 'same');
        expect(KERNELS.map((name, i) => wasmKernelStats(name).calls - before[i])).toEqual([
          2, 1, 1,
        ]);
        for (const name of KERNELS)
          expect(wasmKernelStats(name).lastThreads).toBe(Math.min(2, getThreadsCount()));
        expect(relErr(y, yRef)).toBeLessThanOrEqual(1e-4);
        expect(relErr(dx, dxRef)).toBeLessThanOrEqual(1e-4);
        expect(relErr(dw, dwRef)).toBeLessThanOrEqual(1e-4);
      } finally {
        useWinograd(true);
      }
    });
  }

  // 3x3 stride-1 convs (Ci a multiple of 4, Co of 8), their dW, and their dx (the same with Ci and
  // Co swapped) take Winograd — F(4x4, 3x3) by default, F(2x2, 3x3) on request: odd sizes (partial
  // tiles), both paddings, units of several tile rows, and one conv large enough for 2 threads.
  // `forward`/`dx`: which of the two it must take.
  const winograd = [
    { n: 2, h: 9, w: 10, pad: 'same' as const, cin: 8, cout: 16, forward: true, dx: true },
    { n: 3, h: 8, w: 8, pad: 'valid' as const, cin: 16, cout: 8, forward: true, dx: true },
    { n: 2, h: 7, w: 7, pad: 'same' as const, cin: 4, cout: 8, forward: true, dx: false },
    { n: 2, h: 6, w: 5, pad: 'same' as const, cin: 16, cout: 4, forward: false, dx: true },
    { n: 3, h: 2, w: 3, pad: 'same' as const, cin: 8, cout: 8, forward: true, dx: true },
    { n: 16, h: 16, w: 16, pad: 'same' as const, cin: 16, cout: 32, forward: true, dx: true },
    { n: 2, h: 13, w: 6, pad: 'valid' as const, cin: 64, cout: 64, forward: true, dx: true },
  ];
  // Largest difference from the cpu backend relative to the largest value (relErr): F(2x2, 3x3)'s
  // transforms add a rounding or two (measured here ≤ 1.6e-6); F(4x4, 3x3)'s coefficients (5 in
  // B', 8 in A', 1/24 in G) several times more (measured ≤ 6.7e-6: y, dx and dW of these cases).
  const WINOGRAD4_TOLERANCE = 3e-5;
  for (const m of [4, 2] as const)
    for (const c of winograd) {
      it(`Winograd F(${m}x${m}, 3x3): 3x3 stride 1 ${c.pad}, ${c.n}×${c.h}×${c.w}, ${c.cin}→${c.cout} (forward ${c.forward}, dx ${c.dx})`, async () => {
        const rng = new Rng(c.n * 1000 + c.h * 10 + c.cin);
        const xs = [c.n, c.h, c.w, c.cin];
        const ws = [3, 3, c.cin, c.cout];
        const x = randomArray(
          xs.reduce((a, b) => a * b),
          rng,
        );
        const w = randomArray(
          ws.reduce((a, b) => a * b),
          rng,
        );
        const r = randomArray(c.n * c.h * c.w * c.cout, rng);
        await tf.setBackend('cpu');
        const [dxRef, dwRef, yRef] = convGrads(x, w, r, xs, ws, 1, c.pad);
        await tf.setBackend('wasm');
        useWinograd(true, m);
        try {
          const [own, other] = m === 4 ? ['winograd4', 'winograd'] : ['winograd', 'winograd4'];
          const names = [
            `${own}_conv`,
            `${own}_filter_grad`,
            ...KERNELS,
            `${other}_conv`,
            `${other}_filter_grad`,
          ];
          const before = names.map((name) => wasmKernelStats(name).calls);
          const [dx, dw, y] = convGrads(x, w, r, xs, ws, 1, c.pad);
          const ran = names.map((name, i) => wasmKernelStats(name).calls - before[i]);
          // The forward conv runs twice (tf.grads, then the check), dx and dW once; dW takes Winograd
          // when the forward conv does.
          const f = c.forward ? 1 : 0;
          const d = c.dx ? 1 : 0;
          expect(ran).toEqual([2 * f + d, f, 2 * (1 - f), 1 - d, 1 - f, 0, 0]);
          if (c.n === 16)
            for (const name of names.slice(0, 2))
              expect(wasmKernelStats(name).lastThreads).toBe(Math.min(2, getThreadsCount()));
          const tol = m === 4 ? WINOGRAD4_TOLERANCE : 1e-5;
          expect(relErr(y, yRef)).toBeLessThanOrEqual(tol);
          expect(relErr(dx, dxRef)).toBeLessThanOrEqual(tol);
          expect(relErr(dw, dwRef)).toBeLessThanOrEqual(tol);
        } finally {
          useWinograd(true, 4);
        }
      });
    }

  it("FusedConv2D (a graph model's conv, its BatchNorm folded into the bias) with ReLU / ReLU6 on our kernels", async () => {
    const rng = new Rng(21);
    const x = randomArray(4 * 9 * 9 * 8, rng);
    const w = randomArray(3 * 3 * 8 * 16, rng);
    const bias = randomArray(16, rng);
    const run = (activation: 'linear' | 'relu' | 'relu6', strides: number) =>
      tf.tidy(() =>
        tf.fused
          .conv2d({
            x: tf.tensor4d(x, [4, 9, 9, 8]),
            filter: tf.tensor4d(w, [3, 3, 8, 16]),
            strides,
            pad: 'same',
            bias: tf.tensor1d(bias),
            activation,
          })
          .dataSync()
          .slice(),
      );
    for (const activation of ['linear', 'relu', 'relu6'] as const) {
      for (const strides of [1, 2]) {
        await tf.setBackend('cpu');
        const ref = run(activation, strides);
        await tf.setBackend('wasm');
        const kernel = strides === 1 ? 'winograd4_conv' : 'conv2d';
        const calls = wasmKernelStats(kernel).calls;
        const relu = wasmKernelStats(activation === 'linear' ? 'relu' : activation).calls;
        expect(relErr(run(activation, strides), ref)).toBeLessThanOrEqual(1e-5);
        expect(wasmKernelStats(kernel).calls - calls).toBe(1);
        // ReLU in the conv kernel's epilogue, ReLU6 as one more pass
        if (activation !== 'linear')
          expect(wasmKernelStats(activation).calls - relu).toBe(activation === 'relu6' ? 1 : 0);
      }
    }
  });

  it("a dilated conv, which our kernel does not cover, runs on tfjs's own and matches the cpu backend", async () => {
    const rng = new Rng(99);
    const x = randomArray(2 * 9 * 9 * 3, rng);
    const w = randomArray(3 * 3 * 3 * 4, rng);
    const run = () =>
      tf.tidy(() =>
        tf
          .conv2d(tf.tensor4d(x, [2, 9, 9, 3]), tf.tensor4d(w, [3, 3, 3, 4]), 1, 'same', 'NHWC', 2)
          .dataSync()
          .slice(),
      );
    await tf.setBackend('cpu');
    const ref = run();
    await tf.setBackend('wasm');
    const calls = wasmKernelStats('conv2d').calls;
    expect(relErr(run(), ref)).toBeLessThanOrEqual(1e-5);
    expect(wasmKernelStats('conv2d').calls).toBe(calls);
  });

  it('a dilated (atrous) conv has a gradient, on wasm and cpu: that of the conv with its filter written out', async () => {
    const rng = new Rng(31);
    const [kh, kw, cin, cout, dh, dw] = [3, 2, 3, 5, 2, 3];
    const x = randomArray(2 * 9 * 10 * cin, rng);
    const w = randomArray(kh * kw * cin * cout, rng);
    const r = randomArray(2 * 9 * 10 * cout, rng);
    // The dilated filter with its zeros: taps (a·dh, b·dw) of a ((kh−1)·dh+1) × ((kw−1)·dw+1) filter.
    const [wh, ww] = [(kh - 1) * dh + 1, (kw - 1) * dw + 1];
    const wide = new Float32Array(wh * ww * cin * cout);
    for (let a = 0; a < kh; a++)
      for (let b = 0; b < kw; b++)
        for (let i = 0; i < cin * cout; i++)
          wide[(a * dh * ww + b * dw) * cin * cout + i] = w[(a * kw + b) * cin * cout + i];
    const grads = (
      filter: Float32Array,
      shape: [number, number, number, number],
      dilations: [number, number],
      pad: 'same' | 'valid',
    ) =>
      tf.tidy(() => {
        const [dx, dwt] = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
          const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad, 'NHWC', dilations);
          return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
        })([tf.tensor4d(x, [2, 9, 10, cin]), tf.tensor4d(filter, shape)]);
        return { dx: dx.dataSync().slice(), dw: dwt.dataSync().slice() };
      });
    for (const pad of ['same', 'valid'] as const) {
      await tf.setBackend('cpu');
      const ref = grads(wide, [wh, ww, cin, cout], [1, 1], pad);
      const refDw = new Float32Array(w.length);
      for (let a = 0; a < kh; a++)
        for (let b = 0; b < kw; b++)
          for (let i = 0; i < cin * cout; i++)
            refDw[(a * kw + b) * cin * cout + i] = ref.dw[(a * dh * ww + b * dw) * cin * cout + i];
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const got = grads(w, [kh, kw, cin, cout], [dh, dw], pad);
        expect(relErr(got.dx, ref.dx)).toBeLessThanOrEqual(1e-5);
        expect(relErr(got.dw, refDw)).toBeLessThanOrEqual(1e-5);
      }
    }
    await tf.setBackend('wasm');
  });

  it('embeds the kernels built from the current C sources (run scripts/build-kernels.sh after editing them)', () => {
    const dir = new URL('../../backend/wasm/kernels/', import.meta.url);
    const files = fs
      .readdirSync(dir)
      .filter((f) => /\.(c|h)$/.test(f))
      .sort();
    const hash = crypto.createHash('sha256');
    for (const f of files) hash.update(fs.readFileSync(new URL(f, dir)));
    expect(hash.digest('hex')).toBe(sourceSha256);
  });

  // Direct kernels (stride 2), Winograd (stride 1, channels it takes), XNNPACK.
  for (const [kernel, stride, cin] of [
    [true, 2, 13],
    [true, 1, 16],
    [false, 2, 13],
  ] as const) {
    const path = !kernel ? ' (XNNPACK, without our kernels)' : stride === 1 ? ' (Winograd)' : '';
    it(`frees every intermediate of the conv kernels (heap buffers included)${path}`, () => {
      useWasmKernels(kernel);
      const x = tf.randomNormal([8, 16, 16, cin]) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, cin, 24]) as tf.Tensor4D;
      const winogradCalls = wasmKernelStats('winograd4_conv').calls;
      const winogradGradCalls = wasmKernelStats('winograd4_filter_grad').calls;
      const step = () =>
        tf.tidy(() =>
          tf
            .grads((a: tf.Tensor, b: tf.Tensor) =>
              tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, 'same').sum(),
            )([x, w])
            .forEach((g) => g.dataSync()),
        );
      try {
        expectNoLeak(step, 5);
        expect(wasmKernelStats('winograd4_conv').calls > winogradCalls).toBe(
          path === ' (Winograd)',
        );
        expect(wasmKernelStats('winograd4_filter_grad').calls > winogradGradCalls).toBe(
          path === ' (Winograd)',
        );
      } finally {
        useWasmKernels(true);
        x.dispose();
        w.dispose();
      }
    });
  }
});
