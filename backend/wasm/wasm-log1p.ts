/**
 * Log1p on wasm to float32 precision. tfjs's wasm Log1p computes log(1 + x), which is 0 for
 * |x| < 6e-8 and off in the fourth digit at 1e-3; cross-entropy on a confidently classified image
 * is log1p of ~1e-10 (attacks/losses.ts), and attacks that compare losses saw a flat 0.
 *
 * Goldberg's identity from tfjs's own kernels: with u = 1 + x (rounded),
 * log1p(x) = x if u = 1, log(u) if u = x (huge, infinite or NaN x), else log(u) · x / (u − 1).
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type Backend, KernelRunner } from './wasm-kernel-runner.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

let stockLog1p: tf.KernelFunc | undefined;

function log1pKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype !== 'float32')
    return stockLog1p!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const k = new KernelRunner(args.backend as Backend);
  const one = k.run('OnesLike', { x });
  const u = k.run('Add', { a: x, b: one });
  const logU = k.run('Log', { x: u });
  const corrected = k.run('Multiply', {
    a: logU,
    b: k.run('RealDiv', { a: x, b: k.run('Sub', { a: u, b: one }) }),
  });
  const far = k.run('Select', { condition: k.run('Equal', { a: u, b: x }), t: logU, e: corrected });
  return k.finish(k.run('Select', { condition: k.run('Equal', { a: u, b: one }), t: x, e: far }));
}

/** Puts the precise Log1p in the place of tfjs's wasm Log1p (idempotent). */
export function registerWasmLog1p(): void {
  stockLog1p = replaceWasmKernel('Log1p', log1pKernel as tf.KernelFunc) ?? stockLog1p;
}
