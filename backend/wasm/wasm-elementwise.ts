/** The runner shared by our elementwise wasm kernels (backend/kernels/elementwise.c). */
import tf from '#tfjs';
import {
  type WasmHeapBackend,
  heapOffset,
  runRowKernel,
  threadsFor,
  wasmKernelPool,
} from './wasm-kernels.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';
import type { WasmKernelPool } from './wasm-kernel-pool.js';

const ROW = 4096; // floats per row of the C kernels
// An elementwise pass is memory-bound: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/** Runs elementwise kernel `name(out, ...operands, count)` into a new float32 tensor of `shape`. */
export function elementwise(
  b: WasmHeapBackend,
  kernels: WasmKernelPool,
  name: string,
  shape: number[],
  operands: tf.TensorInfo[],
): tf.TensorInfo {
  const count = tf.util.sizeFromShape(shape);
  const rows = Math.ceil(count / ROW);
  const out = b.makeOutput(shape, 'float32');
  if (count === 0) return out;
  const threads = threadsFor(kernels, count, rows, MIN_FLOATS_PER_THREAD);
  try {
    runRowKernel(
      kernels,
      name,
      new Array<number>(threads).fill(heapOffset(b, out)),
      [...operands.map((t) => heapOffset(b, t)), count],
      rows,
    );
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}

const unaryKernels = new Map<string, tf.KernelFunc>();

/**
 * Puts elementwise kernel `kernel` in place of the stock wasm kernel `name` (a unary op: Relu,
 * Relu6) for float32 inputs; the stock kernel serves where ours cannot run. Idempotent.
 */
export function replaceWithElementwise(name: string, kernel: string): void {
  if (unaryKernels.has(name) && tf.getKernel(name, 'wasm')?.kernelFunc === unaryKernels.get(name))
    return;
  let stock: tf.KernelFunc | undefined; // eslint-disable-line prefer-const -- assigned after `ours` is built
  const ours = ((args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const b = args.backend as WasmHeapBackend;
    const kernels = x.dtype === 'float32' ? wasmKernelPool(b) : null;
    if (!kernels) return stock!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    return elementwise(b, kernels, kernel, x.shape, [x]);
  }) as tf.KernelFunc;
  stock = replaceWasmKernel(name, ours);
  unaryKernels.set(name, ours);
}
