/**
 * What decides the last bits of the numbers a backend computes, besides its name: whose kernels run
 * (robust's wasm SIMD kernels or tfjs's own), the algorithm of 3x3 stride-1 convs (Winograd
 * F(4x4, 3x3), F(2x2, 3x3) or direct) and whether our kernels' multiply-adds are fused (FMA
 * through wasm relaxed SIMD: one rounding instead of two). Results record it beside the backend (`compute` in cells,
 * results.json, partial cells, shard manifests, a training run's state), so that work done under
 * one variant is never continued under another as one number.
 *
 * The thread count on wasm is not part of it: it changes no bit. Our sums over rows (filter
 * gradients, training-mode batch norm) are cut into chunks by the shape alone and added in chunk
 * order (wasm-kernels.ts, sumChunks); every other kernel of ours writes each output from one
 * thread; and tfjs's wasm kernels that training and attacks use (XNNPACK matmul and conv, Sum,
 * Mean, Max, Softmax, pooling) were measured bitwise equal on 1, 2 and 3 threads.
 */
import tf from '#tfjs';
import { affinityCores } from '../util/platform.js';
import {
  kernelsFma,
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

const winograd = (m: 2 | 4) => `Winograd F(${m}x${m},3x3)`;

/**
 * The compute variant of the running backend, e.g. "robust kernels, Winograd F(4x4,3x3)" on wasm,
 * "robust kernels, Winograd F(4x4,3x3), FMA" where their relaxed-SIMD build runs, "tfjs kernels,
 * 1 thread" on cpu. Read from what runs now (ROBUST_WASM_KERNELS, ROBUST_WINOGRAD,
 * ROBUST_RELAXED_SIMD, useWasmKernels / useWinograd / useRelaxedSimd, whether our kernels can run
 * here at all and whether the engine fuses relaxed SIMD's multiply-add).
 */
export function computeVariant(): string {
  const name = tf.getBackend();
  if (name === 'wasm') {
    // Our kernels run when on and where their pool starts (wasm SIMD, worker threads); else tfjs's do.
    if (!wasmKernelPool(tf.backend() as unknown as WasmHeapBackend))
      return 'tfjs kernels (XNNPACK)';
    const convs = winogradEnabled() ? winograd(winogradTile()) : 'direct convs';
    return `robust kernels, ${convs}${kernelsFma() ? ', FMA' : ''}`;
  }
  if (name === 'cpu') return 'tfjs kernels, 1 thread';
  // libtensorflow sizes its own thread pool by the cores its affinity allows (a quota unseen)
  if (name === 'tensorflow') return `libtensorflow, ${affinityCores()} cores`;
  return `tfjs ${name} kernels`;
}

/**
 * The variant of results written before `compute` was recorded (cells, partials, manifests,
 * training state without it), from their backend. On wasm that release ran our kernels with
 * Winograd F(2x2, 3x3) by default: today's ROBUST_WINOGRAD=2 variant, whose numbers it computed
 * bit for bit in inference (its thread-dependent sums were in training only), so such a partial
 * resumes under ROBUST_WINOGRAD=2. (ROBUST_WINOGRAD=0 or ROBUST_WASM_KERNELS=0 runs of it were not
 * told apart, the gap this field closes.) cpu has not changed.
 */
export function legacyCompute(backend: string): string {
  if (backend === 'wasm') return `robust kernels, ${winograd(2)}`;
  if (backend === 'cpu') return 'tfjs kernels, 1 thread';
  if (backend === 'node' || backend === 'node-gpu') return 'libtensorflow, cores not recorded';
  return 'not recorded';
}

/** "wasm (robust kernels, Winograd F(4x4,3x3))": a backend and its variant in one line. */
export const describeCompute = (backend: string, compute: string): string =>
  `${backend} (${compute})`;
