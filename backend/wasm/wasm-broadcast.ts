/**
 * Add, Sub, Multiply and RealDiv on wasm where one operand broadcasts over the middle axes: a
 * per-channel bias, mean or scale ([C] against [N, H, W, C]: every BiasAdd the graph executor runs
 * unfused, the Rescaling / Normalization layers) or a per-image one ([N, 1, 1, C]: squeeze-excite,
 * and the gradients of Mean and of those ops). tfjs's wasm kernels run a generic broadcasting loop
 * there, about ten times slower than the same-shape op; ours (backend/kernels/elementwise.c,
 * channel_binary) is one SIMD pass split across the kernel threads, with the same IEEE results.
 * Every other case (same shapes, scalars, other dtypes) keeps the stock kernel.
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
const OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
type OpName = keyof typeof OPS;
const stock: Partial<Record<OpName, tf.KernelFunc>> = {};
// One pass over memory: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/**
 * How `small` broadcasts against `full` (out's shape) as [outer, mid, C]: its leading axes equal
 * to out's (outer), then ones (mid), then out's last axis; null for any other pattern.
 */
export function channelPattern(
  full: number[],
  small: number[],
): { outer: number; mid: number; C: number; perOuter: boolean } | null {
  const rank = full.length;
  if (rank < 2 || small.length > rank || small.length === 0) return null;
  const s = [...new Array<number>(rank - small.length).fill(1), ...small];
  const C = full[rank - 1];
  if (s[rank - 1] !== C || C < 2) return null;
  let k = 0; // leading axes equal to out's
  while (k < rank - 1 && s[k] === full[k] && full[k] !== 1) k++;
  for (let i = k; i < rank - 1; i++) if (s[i] !== 1) return null;
  const outer = full.slice(0, k).reduce((a, b) => a * b, 1);
  const mid = full.slice(k, rank - 1).reduce((a, b) => a * b, 1);
  if (mid === 1) return null; // nothing broadcasts: the same-shape (stock) op
  return { outer, mid, C, perOuter: k > 0 };
}

const sameShape = (a: number[], b: number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function binary(name: OpName) {
  return (args: {
    inputs: tf.NamedTensorInfoMap;
    attrs?: tf.NamedAttrMap;
    backend: unknown;
  }): Info => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const backend = args.backend as WasmHeapBackend;
    const kernels =
      a.dtype === 'float32' && b.dtype === 'float32' && !sameShape(a.shape, b.shape)
        ? wasmKernelPool(backend)
        : null;
    if (kernels) {
      // Which operand has the output's shape, and how the other broadcasts against it.
      const swap =
        b.shape.length >= a.shape.length &&
        tf.util.sizeFromShape(b.shape) > tf.util.sizeFromShape(a.shape);
      const [full, small] = swap ? [b, a] : [a, b];
      const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const p = sameShape(full.shape, outShape) ? channelPattern(full.shape, small.shape) : null;
      if (p) {
        const out = backend.makeOutput(full.shape, 'float32');
        try {
          const rows = p.outer * p.mid;
          const threads = threadsFor(kernels, rows * p.C, rows, MIN_FLOATS_PER_THREAD);
          runRowKernel(
            kernels,
            'channel_binary',
            new Array<number>(threads).fill(heapOffset(backend, out)),
            [
              heapOffset(backend, full),
              heapOffset(backend, small),
              OPS[name],
              swap ? 1 : 0,
              p.mid,
              p.C,
              p.perOuter ? 1 : 0,
            ],
            rows,
          );
        } catch (e) {
          backend.disposeData(out.dataId);
          throw e;
        }
        return out;
      }
    }
    return stock[name]!(args as Parameters<tf.KernelFunc>[0]) as Info;
  };
}

const kernelFuncs = Object.fromEntries(
  (Object.keys(OPS) as OpName[]).map((n) => [n, binary(n) as tf.KernelFunc]),
) as Record<OpName, tf.KernelFunc>;

/** Puts the broadcasting binary ops in place of tfjs's wasm Add, Sub, Multiply and RealDiv (idempotent). */
export function registerWasmBroadcast(): void {
  for (const name of Object.keys(OPS) as OpName[])
    stock[name] = replaceWasmKernel(name, kernelFuncs[name]) ?? stock[name];
}
