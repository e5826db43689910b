/**
 * What decides the last bits of the numbers a backend computes, besides its name: whose kernels run
 * (robust's wasm SIMD kernels or tfjs's own), the algorithm of 3x3 stride-1 convs (Winograd
 * F(4x4, 3x3), F(2x2, 3x3) or direct) and the threads that split sums. Results record it beside
 * the backend (`compute` in cells, results.json, partial cells, shard manifests, a training run's
 * state), so that work done under one variant is never continued under another as one number.
 *
 * Threads are part of it: our filter-gradient kernels (direct, Winograd, depthwise) and the sums
 * of training-mode batch norm give each thread its own partial sums, added up afterwards, so the
 * thread count changes the order of summation in training and in train-mode attacks. (Forward
 * convs and input gradients write each output from one thread, and XNNPACK splits outputs, not
 * sums: inference-mode attacks do not depend on it, but one identity keeps the checks simple.)
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { cpuCount } from '../util/platform.js';
import {
  wasmKernelPool,
  winogradEnabled,
  winogradTile,
  type WasmHeapBackend,
} from './wasm/wasm-kernels.js';

/** What computed a piece of work: the backend's name and its compute variant. */
export interface ComputedOn {
  backend: string;
  compute: string;
}

const threads = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;
const winograd = (m: 2 | 4) => `Winograd F(${m}x${m},3x3)`;

/**
 * The compute variant of the running backend, e.g. "robust kernels, Winograd F(4x4,3x3), 2 threads"
 * on wasm, "tfjs kernels, 1 thread" on cpu. Read from what runs now (ROBUST_WASM_KERNELS,
 * ROBUST_WINOGRAD, useWasmKernels / useWinograd, and whether our kernels can run here at all).
 */
export function computeVariant(): string {
  const name = tf.getBackend();
  if (name === 'wasm') {
    const n = threads(getThreadsCount());
    // Our kernels run when on and where their pool starts (wasm SIMD, worker threads); else tfjs's do.
    if (!wasmKernelPool(tf.backend() as unknown as WasmHeapBackend))
      return `tfjs kernels (XNNPACK), ${n}`;
    return `robust kernels, ${winogradEnabled() ? winograd(winogradTile()) : 'direct convs'}, ${n}`;
  }
  if (name === 'cpu') return `tfjs kernels, ${threads(1)}`;
  // libtensorflow sizes its own thread pool by the machine's cores
  if (name === 'tensorflow') return `libtensorflow, ${cpuCount()} cores`;
  return `tfjs ${name} kernels`;
}

/**
 * The variant of results written before `compute` was recorded (cells, partials, manifests,
 * training state without it), from their backend. On wasm that release ran our kernels with
 * Winograd F(2x2, 3x3) by default (ROBUST_WINOGRAD=0 or ROBUST_WASM_KERNELS=0 runs were not told
 * apart, the gap this field closes), on threads it did not record: such work matches no variant
 * of today's, so a partial of it is started over rather than continued. cpu has not changed.
 */
export function legacyCompute(backend: string): string {
  if (backend === 'wasm') return `robust kernels, ${winograd(2)}, threads not recorded`;
  if (backend === 'cpu') return `tfjs kernels, ${threads(1)}`;
  if (backend === 'node' || backend === 'node-gpu') return 'libtensorflow, cores not recorded';
  return 'not recorded';
}

/** "wasm (robust kernels, Winograd F(4x4,3x3), 2 threads)": a backend and its variant in one line. */
export const describeCompute = (backend: string, compute: string): string =>
  `${backend} (${compute})`;
