/** The runner shared by our elementwise wasm kernels (backend/kernels/elementwise.c). */
import * as tf from '@tensorflow/tfjs';
import { type WasmHeapBackend, heapOffset, runRowKernel, threadsFor } from './wasm-kernels.js';
import type { WasmKernelPool } from './wasm-kernel-pool.js';

const ROW = 4096; // floats per row of the C kernels
// An elementwise pass is memory-bound: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/** Runs elementwise kernel `name(out, ...operands, count)` into a new float32 tensor of `shape`. */
export function elementwise(b: WasmHeapBackend, kernels: WasmKernelPool, name: string, shape: number[], operands: tf.TensorInfo[]): tf.TensorInfo {
  const count = tf.util.sizeFromShape(shape);
  const rows = Math.ceil(count / ROW);
  const out = b.makeOutput(shape, 'float32');
  if (count === 0) return out;
  const threads = threadsFor(kernels, count, rows, MIN_FLOATS_PER_THREAD);
  try {
    runRowKernel(kernels, name, new Array<number>(threads).fill(heapOffset(b, out)), [...operands.map((t) => heapOffset(b, t)), count], rows);
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}
