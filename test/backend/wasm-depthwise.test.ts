import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../backend/index.js';
import { wasmDepthwiseGradientKernels } from '../../backend/wasm/wasm-depthwise.js';
import { useWasmKernels, wasmKernelStats } from '../../backend/wasm/wasm-kernels.js';
import { Rng } from '../../util/rng.js';
import { randomArray, expectNoLeak } from '../helpers.js';

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  m: number;
  kh: number;
  kw: number;
  strides: [number, number];
  dilations: [number, number];
  pad: Pad;
  seed: number;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Largest absolute difference from the reference b, relative to b's largest magnitude (absolute where b is all zeros). */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

/** The filter with its dilation's zeros written out (dilation 1 then computes the same conv). */
function writtenOut(w: Float32Array, c: Case): { w: Float32Array; kh: number; kw: number } {
  const [dh, dw] = c.dilations;
  const kh = (c.kh - 1) * dh + 1;
  const kw = (c.kw - 1) * dw + 1;
  const out = new Float32Array(kh * kw * c.c * c.m);
  for (let a = 0; a < c.kh; a++)
    for (let b = 0; b < c.kw; b++)
      for (let i = 0; i < c.c * c.m; i++)
        out[(a * dh * kw + b * dw) * c.c * c.m + i] = w[(a * c.kw + b) * c.c * c.m + i];
  return { w: out, kh, kw };
}

/** y, dx and dW of sum(depthwise(x, w) · r) on the current backend. */
function grads(
  x: Float32Array,
  w: Float32Array,
  r: Float32Array,
  c: Case,
  kh: number,
  kw: number,
  dilations: [number, number],
) {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.c]);
    const wt = tf.tensor4d(w, [kh, kw, c.c, c.m]);
    const conv = (a: tf.Tensor4D, b: tf.Tensor4D) =>
      tf.depthwiseConv2d(a, b, c.strides, c.pad, 'NHWC', dilations);
    const f = (a: tf.Tensor, b: tf.Tensor) => {
      const y = conv(a as tf.Tensor4D, b as tf.Tensor4D);
      return tf.sum(tf.mul(y, tf.tensor(r.subarray(0, y.size), y.shape)));
    };
    const [dx, dw] = tf.grads(f)([xt, wt]);
    return {
      y: conv(xt, wt).dataSync().slice(),
      dx: dx.dataSync().slice(),
      dw: dw.dataSync().slice(),
    };
  });
}

/** The cpu backend's values, its dilated filter gradient read off at the taps of the written-out filter. */
async function reference(x: Float32Array, w: Float32Array, r: Float32Array, c: Case) {
  await tf.setBackend('cpu');
  const wide = writtenOut(w, c);
  const ref = grads(x, wide.w, r, c, wide.kh, wide.kw, [1, 1]);
  const dw = new Float32Array(w.length);
  const [dh, dwl] = c.dilations;
  for (let a = 0; a < c.kh; a++)
    for (let b = 0; b < c.kw; b++)
      for (let i = 0; i < c.c * c.m; i++)
        dw[(a * c.kw + b) * c.c * c.m + i] = ref.dw[(a * dh * wide.kw + b * dwl) * c.c * c.m + i];
  await tf.setBackend('wasm');
  return { ...ref, dw };
}

const KERNELS = [
  'depthwise_backprop_input',
  'depthwise_filter_grad',
  'depthwise_expand',
  'depthwise_reduce',
  'depthwise_conv2d',
];
const worst = { dx: 0, dw: 0, y: 0 };

/** Checks one case on wasm (our kernels, or with `kernels` false the composition of tfjs ops) against the cpu backend. */
async function check(c: Case, kernels: boolean): Promise<void> {
  const rng = new Rng(c.seed);
  const x = randomArray(c.n * c.h * c.w * c.c, rng);
  const w = randomArray(c.kh * c.kw * c.c * c.m, rng);
  const r = randomArray(c.n * (c.h + 6) * (c.w + 6) * c.c * c.m, rng); // explicit padding can make y larger than x
  const ref = await reference(x, w, r, c);
  useWasmKernels(kernels);
  try {
    const before = KERNELS.map((k) => wasmKernelStats(k).calls);
    const got = grads(x, w, r, c, c.kh, c.kw, c.dilations);
    const ran = KERNELS.map((k, i) => wasmKernelStats(k).calls - before[i]);
    // One call each of dx and dW, two forward convs (tf.grads, then y); for a multiplier > 1, x
    // widened for dW and both forward convs, and dx summed down.
    expect(ran).toEqual(kernels ? [1, 1, c.m > 1 ? 3 : 0, c.m > 1 ? 1 : 0, 2] : [0, 0, 0, 0, 0]);
    expect(got.y.length).toBe(ref.y.length);
    expect(got.dx.length).toBe(x.length);
    expect(got.dw.length).toBe(w.length);
    const errors = {
      y: relErr(got.y, ref.y),
      dx: relErr(got.dx, ref.dx),
      dw: relErr(got.dw, ref.dw),
    };
    for (const k of ['y', 'dx', 'dw'] as const)
      if (kernels || k !== 'y') worst[k] = Math.max(worst[k], errors[k]);
    // Relative to the largest reference value (sums of at most a few hundred products in float32).
    // (Without our kernels the forward conv is tfjs's XNNPACK one, wrong for some shapes: test below.)
    if (kernels) expect(errors.y).toBeLessThanOrEqual(1e-5);
    expect(errors.dx).toBeLessThanOrEqual(1e-5);
    expect(errors.dw).toBeLessThanOrEqual(1e-5);
  } finally {
    useWasmKernels(true);
  }
}

/** Shapes the forward op accepts: strides or dilations 1, an output at least 1×1. */
const cases = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 11 }),
    w: fc.integer({ min: 1, max: 11 }),
    c: fc.integer({ min: 1, max: 21 }),
    m: fc.oneof(
      { weight: 3, arbitrary: fc.constant(1) },
      { weight: 2, arbitrary: fc.integer({ min: 2, max: 3 }) },
    ),
    kh: fc.integer({ min: 1, max: 5 }),
    kw: fc.integer({ min: 1, max: 5 }),
    strides: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    dilations: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    dilated: fc.boolean(),
    pad: fc.oneof(
      fc.constantFrom<Pad>('same', 'valid'),
      fc
        .tuple(
          fc.integer({ min: 0, max: 3 }),
          fc.integer({ min: 0, max: 3 }),
          fc.integer({ min: 0, max: 3 }),
          fc.integer({ min: 0, max: 3 }),
        )
        .map(([t, b, l, r]): Pad => [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ]),
    ),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map(({ dilated, ...c }): Case =>
    dilated ? { ...c, strides: [1, 1] } : { ...c, dilations: [1, 1] },
  )
  .filter((c) => {
    if (c.pad === 'same') return true;
    const [t, b, l, r] =
      c.pad === 'valid' ? [0, 0, 0, 0] : [c.pad[1][0], c.pad[1][1], c.pad[2][0], c.pad[2][1]];
    return (
      c.h + t + b >= (c.kh - 1) * c.dilations[0] + 1 &&
      c.w + l + r >= (c.kw - 1) * c.dilations[1] + 1
    );
  });

describe('depthwise convs and their gradients on wasm match the cpu backend', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });
  afterAll(() => {
    // The largest errors seen, relative to the reference's largest magnitude.
    console.info(
      `depthwise conv, max relative error: forward ${worst.y.toExponential(2)}, dx ${worst.dx.toExponential(2)}, dW ${worst.dw.toExponential(2)}`,
    );
  });

  it('registers ours as the wasm kernels', () => {
    for (const k of wasmDepthwiseGradientKernels)
      expect(tf.getKernel(k.kernelName, 'wasm')?.kernelFunc).toBe(k.kernelFunc);
  });

  it('our SIMD kernels: any stride, padding, dilation and channel multiplier (property)', async () => {
    await fc.assert(
      fc.asyncProperty(cases, (c) => check(c, true)),
      { numRuns: 80, seed: 4242 },
    );
  });

  it('without our kernels (composed of tfjs wasm ops): the same range (property)', async () => {
    await fc.assert(
      fc.asyncProperty(cases, (c) => check(c, false)),
      { numRuns: 40, seed: 4343 },
    );
  });

  const named: Case[] = [
    // MobileNet's: 3x3 stride 1 and 2 (SAME, and VALID after a Pad), channels in 16s, 8s, 4s and a tail.
    {
      n: 2,
      h: 8,
      w: 8,
      c: 29,
      m: 1,
      kh: 3,
      kw: 3,
      strides: [1, 1],
      dilations: [1, 1],
      pad: 'same',
      seed: 1,
    },
    {
      n: 2,
      h: 9,
      w: 9,
      c: 32,
      m: 1,
      kh: 3,
      kw: 3,
      strides: [2, 2],
      dilations: [1, 1],
      pad: 'valid',
      seed: 2,
    },
    // EfficientNet's 5x5, an atrous (DeepLab) 3x3 at dilation 2, a multiplier of 4, 1-wide images.
    {
      n: 1,
      h: 7,
      w: 6,
      c: 12,
      m: 1,
      kh: 5,
      kw: 5,
      strides: [2, 2],
      dilations: [1, 1],
      pad: 'same',
      seed: 3,
    },
    {
      n: 2,
      h: 9,
      w: 10,
      c: 8,
      m: 1,
      kh: 3,
      kw: 3,
      strides: [1, 1],
      dilations: [2, 2],
      pad: 'same',
      seed: 4,
    },
    {
      n: 2,
      h: 5,
      w: 5,
      c: 3,
      m: 4,
      kh: 3,
      kw: 3,
      strides: [1, 1],
      dilations: [1, 1],
      pad: 'same',
      seed: 5,
    },
    {
      n: 3,
      h: 1,
      w: 9,
      c: 5,
      m: 1,
      kh: 1,
      kw: 3,
      strides: [1, 2],
      dilations: [1, 1],
      pad: 'valid',
      seed: 6,
    },
  ];
  for (const c of named) {
    it(`${c.kh}x${c.kw} stride ${c.strides} dilation ${c.dilations} ${c.pad}, ${c.n}×${c.h}×${c.w}×${c.c}, multiplier ${c.m}`, async () => {
      await check(c, true);
      await check(c, false);
    });
  }

  it('splits large convolutions across the kernel threads (checked against the composition of tfjs ops)', () => {
    const c: Case = {
      n: 16,
      h: 24,
      w: 24,
      c: 64,
      m: 1,
      kh: 3,
      kw: 3,
      strides: [1, 1],
      dilations: [1, 1],
      pad: 'same',
      seed: 7,
    };
    const rng = new Rng(c.seed);
    const x = randomArray(size([c.n, c.h, c.w, c.c]), rng);
    const w = randomArray(size([c.kh, c.kw, c.c, c.m]), rng);
    const r = randomArray(size([c.n, c.h, c.w, c.c]), rng);
    useWasmKernels(false);
    const ref = grads(x, w, r, c, c.kh, c.kw, c.dilations);
    useWasmKernels(true);
    const got = grads(x, w, r, c, c.kh, c.kw, c.dilations);
    for (const k of KERNELS.slice(0, 2))
      expect(wasmKernelStats(k).lastThreads).toBe(Math.min(2, getThreadsCount()));
    expect(relErr(got.dx, ref.dx)).toBeLessThanOrEqual(1e-5);
    expect(relErr(got.dw, ref.dw)).toBeLessThanOrEqual(1e-5);
  });

  it("fused with a bias and ReLU / ReLU6 (FusedDepthwiseConv2D), the cpu backend's values", async () => {
    const rng = new Rng(12);
    const x = randomArray(2 * 9 * 9 * 20, rng);
    const w = randomArray(3 * 3 * 20, rng);
    const bias = randomArray(20, rng);
    const run = (activation: 'linear' | 'relu' | 'relu6', strides: [number, number]) =>
      tf.tidy(() => {
        const args = {
          x: tf.tensor4d(x, [2, 9, 9, 20]),
          filter: tf.tensor4d(w, [3, 3, 20, 1]),
          strides,
          pad: 'same' as const,
          bias: tf.tensor1d(bias),
          activation,
        };
        return tf.fused.depthwiseConv2d(args).mul(3).dataSync().slice(); // ×3: ReLU6's cap is reached
      });
    for (const activation of ['linear', 'relu', 'relu6'] as const) {
      for (const strides of [
        [1, 1],
        [2, 1],
      ] as [number, number][]) {
        await tf.setBackend('cpu');
        const ref = run(activation, strides);
        await tf.setBackend('wasm');
        const calls = wasmKernelStats('depthwise_conv2d').calls;
        expect(relErr(run(activation, strides), ref)).toBeLessThanOrEqual(1e-6);
        expect(wasmKernelStats('depthwise_conv2d').calls - calls).toBe(1);
      }
    }
  });

  it("replaces tfjs's XNNPACK depthwise conv, which returns zeros for SAME padding and a 1-wide filter along a strided axis", async () => {
    const rng = new Rng(13);
    const x = randomArray(2 * 8 * 10 * 4, rng);
    const w = randomArray(2 * 1 * 4, rng);
    const run = () =>
      tf.tidy(() =>
        tf
          .depthwiseConv2d(
            tf.tensor4d(x, [2, 8, 10, 4]),
            tf.tensor4d(w, [2, 1, 4, 1]),
            [1, 2],
            'same',
          )
          .dataSync()
          .slice(),
      );
    await tf.setBackend('cpu');
    const ref = run();
    await tf.setBackend('wasm');
    expect(relErr(run(), ref)).toBeLessThanOrEqual(1e-6);
    useWasmKernels(false);
    try {
      expect(run().every((v) => v === 0)).toBe(true);
    } finally {
      useWasmKernels(true);
    }
  });

  it('a dilated depthwise conv has a gradient on the cpu backend too (the filter written out)', async () => {
    const c: Case = {
      n: 2,
      h: 7,
      w: 7,
      c: 3,
      m: 2,
      kh: 3,
      kw: 2,
      strides: [1, 1],
      dilations: [2, 3],
      pad: 'same',
      seed: 8,
    };
    const rng = new Rng(c.seed);
    const x = randomArray(size([c.n, c.h, c.w, c.c]), rng);
    const w = randomArray(size([c.kh, c.kw, c.c, c.m]), rng);
    const r = randomArray(size([c.n, c.h, c.w, c.c * c.m]), rng);
    const ref = await reference(x, w, r, c);
    await tf.setBackend('cpu');
    try {
      const got = grads(x, w, r, c, c.kh, c.kw, c.dilations);
      expect(relErr(got.dx, ref.dx)).toBeLessThanOrEqual(1e-6);
      expect(relErr(got.dw, ref.dw)).toBeLessThanOrEqual(1e-6);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  // Our kernels, then the composition (stride 2, multiplier 2: every temporary).
  for (const kernels of [true, false]) {
    it(`frees every intermediate (heap buffers included)${kernels ? '' : ' without our kernels'}`, () => {
      useWasmKernels(kernels);
      const x = tf.randomNormal([4, 12, 12, 24]) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 24, 2]) as tf.Tensor4D;
      const step = () =>
        tf.tidy(() =>
          tf
            .grads((a: tf.Tensor, b: tf.Tensor) =>
              tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same').sum(),
            )([x, w])
            .forEach((g) => g.dataSync()),
        );
      try {
        expectNoLeak(step, 5);
      } finally {
        useWasmKernels(true);
        x.dispose();
        w.dispose();
      }
    });
  }
});
