/**
 * A faster Transpose for the wasm backend.
 *
 * tfjs-backend-wasm's Transpose is a single-threaded loop that recomputes every offset; our conv
 * filter gradient transposes each layer's input and output gradient, and there it ran at
 * ~0.7 GB/s. This kernel walks the output in order with an odometer over the outer axes and one
 * tight inner loop along the last output axis (contiguous or strided reads): 2.5–4× faster on
 * the ResNet shapes. Axes that stay adjacent are merged first, which lengthens the inner loop.
 * Short inner loops (< 8) and other dtypes go to the stock kernel.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { wasmHeap, type WasmBackendLike } from './host-memory.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

type Typed = Float32Array | Int32Array;

/** Merges input axes that stay consecutive in `perm`; returns the smaller problem. */
export function collapseAxes(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const groups: number[][] = [];
  for (const p of perm) {
    const g = groups[groups.length - 1];
    if (g && g[g.length - 1] + 1 === p) g.push(p);
    else groups.push([p]);
  }
  // Input order of the groups gives the collapsed input shape; perm maps output group → input group.
  const byInput = [...groups].sort((a, b) => a[0] - b[0]);
  const newShape = byInput.map((g) => g.reduce((s, a) => s * shape[a], 1));
  const newPerm = groups.map((g) => byInput.indexOf(g));
  return { shape: newShape, perm: newPerm };
}

/** out = transpose(x, perm) for row-major data of `shape`. */
function transposeInto(x: Typed, shape: number[], perm: number[], out: Typed): void {
  const c = collapseAxes(shape, perm);
  const rank = c.shape.length;
  if (rank === 1) {
    out.set(x);
    return;
  }
  const inStrides = new Array<number>(rank);
  inStrides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1] * c.shape[d + 1];
  const outShape = c.perm.map((p) => c.shape[p]);
  const from = c.perm.map((p) => inStrides[p]); // input stride along each output axis
  const inner = outShape[rank - 1];
  const step = from[rank - 1];
  const rows = x.length / inner;
  const idx = new Array<number>(rank - 1).fill(0);
  let base = 0;
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let xi = base;
    for (let i = 0; i < inner; i++, xi += step) out[o + i] = x[xi];
    o += inner;
    for (let d = rank - 2; d >= 0; d--) {
      base += from[d];
      if (++idx[d] < outShape[d]) break;
      base -= from[d] * outShape[d];
      idx[d] = 0;
    }
  }
}

const MIN_INNER = 8;

let stockTranspose: tf.KernelFunc | undefined;

function transpose(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const perm = (args.attrs as { perm: number[] }).perm;
  const c = collapseAxes(x.shape, perm);
  const innerLength = c.shape[c.perm[c.perm.length - 1]];
  if (
    (x.dtype !== 'float32' && x.dtype !== 'int32') ||
    (c.shape.length > 1 && innerLength < MIN_INNER)
  ) {
    return stockTranspose!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const b = args.backend as WasmBackendLike;
  const out = b.makeOutput(
    perm.map((p) => x.shape[p]),
    x.dtype,
  );
  const n = x.shape.reduce((a, d) => a * d, 1);
  const Ctor = x.dtype === 'float32' ? Float32Array : Int32Array;
  const heap = wasmHeap(b); // after makeOutput, which may have grown the heap
  transposeInto(
    new Ctor(heap, b.dataIdMap.get(x.dataId).memoryOffset, n),
    x.shape,
    perm,
    new Ctor(heap, b.dataIdMap.get(out.dataId).memoryOffset, n),
  );
  return out;
}

/** Registers the faster Transpose for wasm (idempotent; keeps the stock kernel for the cases it leaves). */
export function registerWasmTranspose(): void {
  stockTranspose = replaceWasmKernel('Transpose', transpose as tf.KernelFunc) ?? stockTranspose;
}
