/**
 * The two passes of training-mode BatchNorm (per-channel sums, per-channel affine map) with our
 * wasm SIMD kernels (backend/kernels/batchnorm.c), split by rows across the kernel threads. Same
 * contract as the JS loops in batchnorm-train.ts, which remain for the cpu backend.
 */
import tf from '#tfjs';
import {
  type WasmHeapBackend,
  countKernelCall,
  heapOffset,
  runRowKernel,
  sumChunks,
  threadsFor,
  wasmKernelPool,
  withHeapBuffer,
} from './wasm-kernels.js';
import { wasmHeap } from './host-memory.js';

type Data = { dataId: object; shape: number[]; size: number };

export interface ChannelPasses {
  /** Per channel: Σ (u − uShift) and Σ (u − uShift)·(w − wShift), in float64. */
  sums(
    channels: number,
    u: Data,
    uShift: ArrayLike<number>,
    w: Data,
    wShift: ArrayLike<number>,
  ): { s1: Float64Array; s2: Float64Array };
  /** out = a·u + k per channel, plus b·v when v is given. */
  affine(
    channels: number,
    out: Data,
    u: Data,
    a: Float32Array,
    k: Float32Array,
    v?: Data,
    b?: Float32Array,
  ): void;
}

// Below this many values per thread, waking a second thread costs more than it saves.
const MIN_VALUES_PER_THREAD = 1 << 18;
// Rows summed in float32 before float64 (BLOCK in kernels/batchnorm.c).
const BLOCK = 256;

/** The passes on the wasm backend's heap, or null where our kernels cannot run. */
export function wasmChannelPasses(): ChannelPasses | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmHeapBackend;
  const kernels = wasmKernelPool(backend);
  if (!kernels) return null;
  const threads = (values: number, rows: number) =>
    threadsFor(kernels, values, rows, MIN_VALUES_PER_THREAD);

  /** A heap buffer of `floats` float32s, written with `fill` before the kernel runs; freed after. */
  const withScratch = <T>(
    floats: number,
    fill: (f: Float32Array) => void,
    run: (at: number) => T,
  ): T =>
    withHeapBuffer(backend, floats, (at) => {
      fill(new Float32Array(wasmHeap(backend), at, floats));
      return run(at);
    });

  return {
    sums(channels, u, uShift, w, wShift) {
      const rows = u.size / channels;
      // Chunks fixed by the shape (on BLOCK boundaries of batchnorm.c), their sums added in chunk
      // order: the same statistics on any number of threads.
      const chunks = sumChunks(rows, u.size, 2 * channels, MIN_VALUES_PER_THREAD, BLOCK);
      // [chunks][2][C] float64 sums first (8-byte aligned), then the two shifts.
      const sumFloats = chunks.count * 4 * channels;
      return withScratch(
        sumFloats + 2 * channels,
        (f) => {
          f.set(uShift, sumFloats);
          f.set(wShift, sumFloats + channels);
        },
        (at) => {
          const us = at + 4 * sumFloats;
          const ws = us + 4 * channels;
          kernels.runChunks(
            'channel_sums',
            { slots: at, stride: 16 * channels, threads: threads(u.size, chunks.count) },
            [heapOffset(backend, u), us, heapOffset(backend, w), ws, channels],
            rows,
            chunks.rows,
            0,
            chunks.count,
          );
          countKernelCall('channel_sums', Math.min(threads(u.size, chunks.count), chunks.count));
          const partial = new Float64Array(wasmHeap(backend), at, chunks.count * 2 * channels);
          const s1 = new Float64Array(channels);
          const s2 = new Float64Array(channels);
          for (let k = 0; k < chunks.count; k++) {
            for (let c = 0; c < channels; c++) {
              s1[c] += partial[k * 2 * channels + c];
              s2[c] += partial[k * 2 * channels + channels + c];
            }
          }
          return { s1, s2 };
        },
      );
    },

    affine(channels, out, u, a, k, v, b) {
      const rows = u.size / channels;
      const used = threads(u.size, rows);
      withScratch(
        3 * channels,
        (f) => {
          f.set(a, 0);
          f.set(b ?? new Float32Array(channels), channels);
          f.set(k, 2 * channels);
        },
        (at) => {
          const [ap, bp, kp] = [at, at + 4 * channels, at + 8 * channels];
          const vp = v ? heapOffset(backend, v) : heapOffset(backend, u);
          const targets = new Array<number>(used).fill(heapOffset(backend, out));
          runRowKernel(
            kernels,
            'channel_affine',
            targets,
            [heapOffset(backend, u), vp, ap, bp, kp, v ? 1 : 0, channels],
            rows,
          );
        },
      );
    },
  };
}
