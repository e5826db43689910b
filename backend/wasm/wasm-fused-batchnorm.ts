/**
 * Inference-mode BatchNorm (the FusedBatchNorm kernel) on wasm as one per-channel affine pass,
 * y = a·x + k with a = γ/√(σ² + ε) and k = β − μ·a, on our SIMD kernel split across the kernel
 * threads (wasm-batchnorm.ts). tfjs's wasm kernel took 6.8 ms per 2M-float activation — half of an
 * unfolded ResNet-20 forward pass, more than its convolutions. Inputs that are not float32 with
 * 1-D per-channel statistics over the last axis keep the stock kernel.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { wasmChannelPasses } from './wasm-batchnorm.js';
import { wasmHeap } from './host-memory.js';
import { type WasmHeapBackend, heapOffset } from './wasm-kernels.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

type Inputs = {
  x: tf.TensorInfo;
  mean: tf.TensorInfo;
  variance: tf.TensorInfo;
  offset?: tf.TensorInfo;
  scale?: tf.TensorInfo;
};

let stockFusedBatchNorm: tf.KernelFunc | undefined;

function fusedBatchNorm(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): tf.TensorInfo {
  const { x, mean, variance, offset, scale } = args.inputs as Inputs;
  const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
  const channels = x.shape[x.shape.length - 1];
  const stats = [mean, variance, offset, scale].filter((t): t is tf.TensorInfo => t !== undefined);
  const perChannel = stats.every(
    (t) => t.dtype === 'float32' && t.shape.length === 1 && t.shape[0] === channels,
  );
  const passes = x.dtype === 'float32' && perChannel ? wasmChannelPasses() : null;
  if (!passes) return stockFusedBatchNorm!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;

  const b = args.backend as WasmHeapBackend;
  // Read the statistics before makeOutput, which may grow (and so detach) the heap.
  const read = (t: tf.TensorInfo | undefined, fallback: number) =>
    t
      ? new Float32Array(wasmHeap(b), heapOffset(b, t), channels).slice()
      : new Float32Array(channels).fill(fallback);
  const [mu, sigma2, beta, gamma] = [
    read(mean, 0),
    read(variance, 1),
    read(offset, 0),
    read(scale, 1),
  ];
  const a = new Float32Array(channels);
  const k = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    a[c] = gamma[c] / Math.sqrt(sigma2[c] + eps);
    k[c] = beta[c] - mu[c] * a[c];
  }
  const out = b.makeOutput(x.shape, 'float32');
  const size = tf.util.sizeFromShape(x.shape);
  try {
    if (size > 0) passes.affine(channels, { ...out, size }, { ...x, size }, a, k);
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/** Registers the one-pass inference BatchNorm for wasm (idempotent; keeps the stock kernel for the rest). */
export function registerWasmFusedBatchNorm(): void {
  stockFusedBatchNorm =
    replaceWasmKernel('FusedBatchNorm', fusedBatchNorm as tf.KernelFunc) ?? stockFusedBatchNorm;
}
