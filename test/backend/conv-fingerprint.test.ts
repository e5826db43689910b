/**
 * The bits of our wasm convolutions, per compute variant (backend/variant.ts): a SHA-256 of the
 * forward conv (with bias, residual and ReLU in the epilogue), dx, dW and a conv–ReLU's dx on fixed
 * inputs. A kernel change that keeps every bit (a faster loop, no arithmetic reordered) passes as
 * is; one that changes a last bit fails here until the variant string names the new arithmetic and
 * its hash is recorded below, so results computed before are never continued as the same numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { computeVariant } from '../../backend/variant.js';
import { kernelsFma, useRelaxedSimd, useWinograd } from '../../backend/wasm/wasm-kernels.js';
import { relaxedMadd } from '../../backend/wasm/relaxed-simd.js';
import { conv2dBiasRelu } from '../../backend/ops/conv-bias-relu.js';
import { Rng } from '../../util/rng.js';
import { randomArray } from '../helpers.js';

/** Hashes of every output below, by compute variant. */
const FINGERPRINTS: Record<string, string> = {
  'robust kernels, Winograd F(4x4,3x3)':
    'e1e39100dd74dc9a51a2717a68f013198f8869e88d0d633c3a860389cc9ad085',
  'robust kernels, Winograd F(2x2,3x3)':
    '25d29273a150657ba116beb86caa7f6de6bdcba4150525642e033879edf3dd3e',
  'robust kernels, direct convs':
    '5c0bed9f7f2c002c822ebc1b1415fae83f922b727567ea16b0d7084c20050776',
  // the relaxed-SIMD build, its multiply-adds fused (x64 with FMA3, arm64)
  'robust kernels, Winograd F(4x4,3x3), FMA':
    'b93691ed3e9c376db76db2cfc657473da4747def86290e547ca73f3d4f7f9a12',
  'robust kernels, Winograd F(2x2,3x3), FMA':
    '352ab3f71f9bc28bbb4a99aa76f9126a7a5ca7f60c2c668fb7fd6c1856756afd',
  'robust kernels, direct convs, FMA':
    '624fce0bd7d90a21a6bd819242e8123a769462d8c4c6395ec1e80586e15a8808',
};

// Borders on every side, a valid conv, small and wide channel counts (the kernels split channels
// into blocks), 8x8 to 4x4 maps as a ResNet's last stages.
const SHAPES = [
  { n: 2, h: 9, w: 10, cin: 8, cout: 16, pad: 'same' as const },
  { n: 3, h: 8, w: 8, cin: 16, cout: 8, pad: 'valid' as const },
  { n: 2, h: 13, w: 6, cin: 64, cout: 64, pad: 'same' as const },
  { n: 2, h: 4, w: 4, cin: 128, cout: 96, pad: 'same' as const },
  { n: 1, h: 8, w: 8, cin: 200, cout: 136, pad: 'same' as const },
  // dW in one chunk, its matrices shared by the threads (wasm-conv-kernels.ts)
  { n: 8, h: 8, w: 8, cin: 128, cout: 128, pad: 'same' as const },
  // wide enough for the wide layers' longer work units (wasm-conv-kernels.ts)
  { n: 32, h: 8, w: 8, cin: 256, cout: 256, pad: 'same' as const },
];

/**
 * The direct kernels' other convs — strides 2, 1x1 projections, channel counts off the SIMD widths
 * (a first conv's 3), larger kernels — which run in every variant (Winograd takes 3x3 stride-1 convs
 * with Ci % 4 = 0 and Co % 8 = 0 only): their forward conv, dx and dW, by FMA or not.
 */
const DIRECT_FINGERPRINTS: Record<string, string> = {
  'robust kernels, direct convs':
    '064292605956d0ef2c5fd6e5d9865f052139b601d3d0676696eb4a64bc039841',
  'robust kernels, direct convs, FMA':
    'fa7679f8be9827dae58c45202db7ebf0ecc799bdd58d8af31bb5fb048f860ab0',
};

// ResNet-style 'same' stride 2 on even maps (padding after), odd maps (both sides), a multi-chunk
// dW whose blocks span images, 4-wide and odd output channel counts (conv2d_filter_grad.c).
const DIRECT_SHAPES = [
  { n: 3, h: 16, cin: 16, cout: 32, k: 3, stride: 2, pad: 'same' as const },
  { n: 2, h: 9, cin: 8, cout: 12, k: 3, stride: 2, pad: 'same' as const },
  { n: 4, h: 8, cin: 32, cout: 64, k: 1, stride: 2, pad: 'same' as const },
  { n: 2, h: 10, cin: 3, cout: 10, k: 3, stride: 1, pad: 'same' as const },
  { n: 2, h: 11, cin: 5, cout: 7, k: 5, stride: 2, pad: 'valid' as const },
  { n: 16, h: 8, cin: 64, cout: 128, k: 3, stride: 2, pad: 'same' as const },
  // ResNet-18's layer 2 entry at a small batch: dW's blocks span images
  { n: 16, h: 32, cin: 64, cout: 128, k: 3, stride: 2, pad: 'same' as const },
  // packed dW with 2 channels past the 4-channel tiles and 2 outputs past them, 2 blocks a chunk
  { n: 16, h: 64, cin: 34, cout: 6, k: 3, stride: 1, pad: 'same' as const },
];

function directOutputs(): Float32Array[] {
  const out: Float32Array[] = [];
  for (const [i, s] of DIRECT_SHAPES.entries()) {
    const rng = new Rng(8000 + i);
    const x = tf.tensor4d(randomArray(s.n * s.h * s.h * s.cin, rng), [s.n, s.h, s.h, s.cin]);
    const w = tf.tensor4d(randomArray(s.k * s.k * s.cin * s.cout, rng), [s.k, s.k, s.cin, s.cout]);
    const y = tf.conv2d(x, w, s.stride, s.pad);
    const r = tf.tensor4d(randomArray(y.size, rng), y.shape);
    const f = (a: tf.Tensor4D, filter: tf.Tensor4D) =>
      tf.sum(tf.mul(tf.conv2d(a, filter, s.stride, s.pad), r));
    const [dx, dw] = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w]);
    out.push(...[y, dx, dw].map((t) => t.dataSync() as Float32Array));
    tf.dispose([x, w, y, r, dx, dw]);
  }
  return out;
}

function outputs(): Float32Array[] {
  const out: Float32Array[] = [];
  for (const [i, s] of SHAPES.entries()) {
    const rng = new Rng(7000 + i);
    const x = tf.tensor4d(randomArray(s.n * s.h * s.w * s.cin, rng), [s.n, s.h, s.w, s.cin]);
    const w = tf.tensor4d(randomArray(9 * s.cin * s.cout, rng), [3, 3, s.cin, s.cout]);
    const b = tf.tensor1d(randomArray(s.cout, rng));
    const [ho, wo] = s.pad === 'same' ? [s.h, s.w] : [s.h - 2, s.w - 2];
    const r = tf.tensor4d(randomArray(s.n * ho * wo * s.cout, rng), [s.n, ho, wo, s.cout]);
    const f = (a: tf.Tensor4D, filter: tf.Tensor4D) =>
      tf.sum(tf.mul(tf.conv2d(a, filter, 1, s.pad), r));
    const [dx, dw] = tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([x, w]);
    const y = conv2dBiasRelu(x, w, b, s.pad === 'same' ? r : null, [1, 1], s.pad);
    // an attack step's conv–ReLU: dx through the ReLU's mask
    const dxRelu = tf.grad((a: tf.Tensor) =>
      tf.sum(tf.mul(conv2dBiasRelu(a as tf.Tensor4D, w, b, null, [1, 1], s.pad), r)),
    )(x);
    out.push(...[y, dx, dw, dxRelu].map((t) => t.dataSync() as Float32Array));
    tf.dispose([x, w, b, r, dx, dw, y, dxRelu]);
  }
  return out;
}

const sha256 = (arrays: Float32Array[]) => {
  const h = crypto.createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
};

describe('the bits of our wasm convolutions', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });
  afterAll(() => {
    useWinograd(true, 4);
    useRelaxedSimd(true);
  });

  for (const relaxed of [false, true])
    for (const [on, m] of [
      [true, 4],
      [true, 2],
      [false, 4],
    ] as const) {
      const build = relaxed ? 'relaxed SIMD' : 'plain SIMD';
      it(`are those recorded for their compute variant (${on ? `F(${m}x${m})` : 'direct'}, ${build})`, () => {
        useRelaxedSimd(relaxed);
        useWinograd(on, m);
        const variant = computeVariant();
        // the relaxed build runs exactly where this engine fuses its multiply-add
        expect(kernelsFma()).toBe(relaxed && relaxedMadd() === 'fused');
        expect(Object.keys(FINGERPRINTS)).toContain(variant);
        expect(sha256(outputs())).toBe(FINGERPRINTS[variant]);
      });
    }

  for (const relaxed of [false, true])
    it(`are those recorded for the direct kernels' strided and odd-channel convs (${relaxed ? 'relaxed' : 'plain'} SIMD)`, () => {
      useRelaxedSimd(relaxed);
      useWinograd(false);
      const variant = computeVariant();
      expect(kernelsFma()).toBe(relaxed && relaxedMadd() === 'fused');
      expect(Object.keys(DIRECT_FINGERPRINTS)).toContain(variant);
      expect(sha256(directOutputs())).toBe(DIRECT_FINGERPRINTS[variant]);
    });
});
