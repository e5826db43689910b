/**
 * Tile on wasm as block copies. tfjs's wasm Tile reads and writes every element through a
 * TensorBuffer and its index arithmetic (~200 ns an element): spreading a per-example mask over
 * an image batch for tf.where — what APGD's and Square's "keep the better point" steps do every
 * iteration, and tf.where's broadcasting in general — took a quarter of an APGD-CE run on
 * ResNet-20 (28 ms per [32,32,32,3] mask). Here the input is written once into the output and
 * then each tiled axis, from the innermost out, is filled by doubling copies of the block before
 * it (copyWithin): a few calls per block, every value copied as it is. Other dtypes keep the stock
 * kernel (which aborts on strings, as before).
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { wasmHeap, type WasmBackendLike } from './host-memory.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

let stockTile: tf.KernelFunc | undefined;

const ARRAYS = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
} as const;

/** Fills out (shape x.shape·reps, row-major) with x tiled `reps` times along each axis. */
export function tileInto(
  x: ArrayLike<number>,
  shape: number[],
  reps: number[],
  out: Float32Array | Int32Array | Uint8Array,
): void {
  const rank = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]);
  const stride = new Array<number>(rank).fill(1); // the output's strides
  for (let i = rank - 2; i >= 0; i--) stride[i] = stride[i + 1] * outShape[i + 1];
  const inner = shape[rank - 1];
  // x's rows (its last axis) where the first tile of each goes
  const rows = inner === 0 ? 0 : x.length / inner;
  const index = new Array<number>(rank).fill(0);
  for (let r = 0; r < rows; r++) {
    let at = 0;
    for (let i = 0; i < rank - 1; i++) at += index[i] * stride[i];
    for (let k = 0; k < inner; k++) out[at + k] = x[r * inner + k];
    for (let i = rank - 2; i >= 0; i--) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
  // axis a, innermost first: for every position of the axes before it (within x's extent — they
  // are tiled later), its first shape[a] slabs are complete; copy them on to fill reps[a] tiles
  for (let a = rank - 1; a >= 0; a--) {
    if (reps[a] === 1) continue;
    const block = shape[a] * stride[a];
    const full = block * reps[a];
    const blocks = shape.slice(0, a).reduce((p, d) => p * d, 1);
    const pos = new Array<number>(a).fill(0);
    for (let b = 0; b < blocks; b++) {
      let base = 0;
      for (let i = 0; i < a; i++) base += pos[i] * stride[i];
      for (let filled = block; filled < full;) {
        const len = Math.min(filled, full - filled);
        out.copyWithin(base + filled, base, base + len);
        filled += len;
      }
      for (let i = a - 1; i >= 0; i--) {
        if (++pos[i] < shape[i]) break;
        pos[i] = 0;
      }
    }
  }
}

function tile(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { reps } = args.attrs as { reps: number[] };
  if (!(x.dtype in ARRAYS) || reps.length !== x.shape.length || x.shape.length === 0)
    return stockTile!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const backend = args.backend as WasmBackendLike;
  const Array_ = ARRAYS[x.dtype as keyof typeof ARRAYS];
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  // views after makeOutput: it may grow the heap
  const heap = wasmHeap(backend);
  const view = (t: tf.TensorInfo) =>
    new Array_(heap, backend.dataIdMap.get(t.dataId).memoryOffset, tf.util.sizeFromShape(t.shape));
  tileInto(view(x), x.shape, reps, view(out));
  return out;
}

/** Whether wasm's Tile is ours. */
export const wasmTileRegistered = (): boolean => tf.getKernel('Tile', 'wasm')?.kernelFunc === tile;

/** Registers the block-copy Tile for wasm (idempotent). */
export function registerWasmTile(): void {
  stockTile = replaceWasmKernel('Tile', tile as tf.KernelFunc) ?? stockTile;
}
