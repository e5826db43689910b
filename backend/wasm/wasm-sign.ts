/**
 * Sign on wasm with the cpu backend's values: 1 for x > 0, -1 for x < 0, 0 for zeros and NaN.
 *
 * tfjs's wasm Sign returns 0 for |x| < FLT_EPSILON (1.2e-7). Every Linf gradient attack steps
 * along sign(∇x loss), and a confidently classified image has an input gradient of ~1e-10: its
 * whole step was 0, so FGSM, PGD and APGD never moved it, and such images counted as robust.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type WasmHeapBackend, wasmKernelPool } from './wasm-kernels.js';
import { type Backend, KernelRunner } from './wasm-kernel-runner.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';
import { elementwise } from './wasm-elementwise.js';

let stockSign: tf.KernelFunc | undefined;

/** (x > 0) − (x < 0) from tfjs's comparison kernels, for when our kernels cannot run. */
function signFromComparisons(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const k = new KernelRunner(backend as Backend);
  const zero = k.run('ZerosLike', { x });
  const above = k.run('Cast', { x: k.run('Greater', { a: x, b: zero }) }, { dtype: 'float32' });
  const below = k.run('Cast', { x: k.run('Less', { a: x, b: zero }) }, { dtype: 'float32' });
  return k.finish(k.run('Sub', { a: above, b: below }));
}

function signKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype !== 'float32')
    return stockSign!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const b = args.backend as WasmHeapBackend;
  const kernels = wasmKernelPool(b);
  return kernels
    ? elementwise(b, kernels, 'sign', x.shape, [x])
    : signFromComparisons(x, args.backend);
}

/** Puts our Sign in the place of tfjs's wasm Sign (idempotent). */
export function registerWasmSign(): void {
  stockSign = replaceWasmKernel('Sign', signKernel as tf.KernelFunc) ?? stockSign;
}
