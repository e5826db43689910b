/**
 * Slice and SplitV on wasm as row copies on our kernel (backend/kernels/copy.c): tfjs's wasm Slice
 * copies row by row from JS (1.6 ms for a [32,16,16,32] slice of a [32,17,17,32] tensor: the
 * gradient of a MobileNet Pad), and its SplitV — the gradient of every ConcatV2 — is such slices.
 * 4-byte dtypes; strings and slices of more than four outer axes keep the stock kernels.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  type WasmHeapBackend,
  heapOffset,
  runRowKernel,
  threadsFor,
  wasmKernelPool,
} from './wasm-kernels.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

type Info = tf.TensorInfo;
let stockSlice: tf.KernelFunc | undefined;
let stockSplitV: tf.KernelFunc | undefined;
// A copy is one pass over memory: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/** x[begin : begin + size] on our kernel; null where it cannot run. */
function sliceWithKernel(
  b: WasmHeapBackend,
  x: Info,
  begin: number[],
  size: number[],
): Info | null {
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return null;
  const rank = x.shape.length;
  if (rank === 0 || size.some((d) => d === 0)) return null;
  const kernels = wasmKernelPool(b);
  if (!kernels) return null;
  // Axes after k are whole, so axes k.. are one contiguous run of `len` values per row.
  let k = rank - 1;
  while (k > 0 && size[k] === x.shape[k]) k--;
  if (k > 4) return null;
  const len = size.slice(k).reduce((p, q) => p * q, 1);
  const strides = tf.util.computeStrides(x.shape);
  const first = begin.reduce((sum, at, i) => sum + at * (i < rank - 1 ? strides[i] : 1), 0);
  const outer = [...new Array<number>(4 - k).fill(1), ...size.slice(0, k)];
  const outerStrides = [...new Array<number>(4 - k).fill(0), ...strides.slice(0, k)];
  const rows = outer.reduce((p, q) => p * q, 1);
  const out = b.makeOutput(size, x.dtype);
  try {
    const threads = threadsFor(kernels, rows * len, rows, MIN_FLOATS_PER_THREAD);
    const args = [heapOffset(b, x) + 4 * first, outer[1], outer[2], outer[3], ...outerStrides, len];
    runRowKernel(
      kernels,
      'slice_rows',
      new Array<number>(threads).fill(heapOffset(b, out)),
      args,
      rows,
    );
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}

function slice(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): Info {
  const { x } = args.inputs as { x: Info };
  const { begin, size } = args.attrs as unknown as {
    begin: number | number[];
    size?: number | number[];
  };
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  return (
    sliceWithKernel(args.backend as WasmHeapBackend, x, b, s) ??
    (stockSlice!(args as Parameters<tf.KernelFunc>[0]) as Info)
  );
}

function splitV(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): Info[] {
  const { x } = args.inputs as { x: Info };
  const { numOrSizeSplits, axis } = args.attrs as unknown as {
    numOrSizeSplits: number | number[];
    axis: number;
  };
  const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  const pieces: Info[] = [];
  for (const s of sizes) {
    const size = [...x.shape];
    size[$axis] = s;
    const piece = sliceWithKernel(args.backend as WasmHeapBackend, x, [...begin], size);
    if (!piece) {
      for (const p of pieces) (args.backend as WasmHeapBackend).disposeData(p.dataId);
      return stockSplitV!(args as Parameters<tf.KernelFunc>[0]) as unknown as Info[];
    }
    pieces.push(piece);
    begin[$axis] += s;
  }
  return pieces;
}

/** Puts our Slice and SplitV in place of tfjs's wasm kernels (idempotent). */
export function registerWasmSlice(): void {
  stockSlice = replaceWasmKernel('Slice', slice as tf.KernelFunc) ?? stockSlice;
  stockSplitV = replaceWasmKernel('SplitV', splitV as unknown as tf.KernelFunc) ?? stockSplitV;
}
