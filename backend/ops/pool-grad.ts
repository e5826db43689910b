/**
 * Max and average pooling gradients.
 *
 * - On wasm, both on our SIMD kernels (backend/kernels/pool.c), threads splitting the batch:
 *   tfjs's wasm MaxPoolGrad / AvgPoolGrad are scalar single-threaded loops (MaxPoolGrad was the
 *   largest kernel of a ResNet graph model's input gradient).
 * - AvgPool's gradient, every backend: tfjs's forward pass averages a window over its positions
 *   inside the image (SAME padding's zeros are not counted), but its gradient kernels divide by the
 *   whole window, kh·kw — wrong at the borders of every SAME average pool (Inception's 3×3 stride-1
 *   pools). Ours divides each window's dy by the count the forward pass divided by: our kernel does
 *   it on wasm; elsewhere dy is first scaled by kh·kw / count, then tfjs's kernel runs.
 * Tests compare with the cpu backend (max pooling, VALID average pooling) and with the exact
 * gradient of the linear map (SAME average pooling).
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  type WasmHeapBackend,
  heapOffset,
  runRowKernel,
  threadsFor,
  wasmKernelPool,
} from '../wasm/wasm-kernels.js';
import { replaceWasmKernel } from '../wasm/wasm-replace-kernel.js';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
interface PoolArgs {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}

// A window's compares and adds are a pass over memory: a second thread pays off on large tensors only.
const MIN_WORK_PER_THREAD = 1 << 18;

function poolInfo(xShape: number[], a: Attrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize as [number, number] | number,
    a.strides as [number, number] | number,
    1,
    a.pad as 'same' | 'valid' | number,
    a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
}

const shapeArgs = (p: tf.backend_util.Conv2DInfo) => [
  p.inHeight,
  p.inWidth,
  p.inChannels,
  p.outHeight,
  p.outWidth,
  p.filterHeight,
  p.filterWidth,
  p.strideHeight,
  p.strideWidth,
  p.padInfo.top,
  p.padInfo.left,
];

/** Runs pool kernel `name(dx, ...operands, shape…, n0, n1)` over the batch into a new dx; null where our kernels cannot run. */
function poolGradWithKernel(
  b: WasmHeapBackend,
  name: string,
  operands: Info[],
  p: tf.backend_util.Conv2DInfo,
): Info | null {
  const kernels = operands.every((t) => t.dtype === 'float32') ? wasmKernelPool(b) : null;
  if (!kernels || p.dilationHeight !== 1 || p.dilationWidth !== 1) return null;
  const dx = b.makeOutput([p.batchSize, p.inHeight, p.inWidth, p.inChannels], 'float32');
  try {
    const work =
      p.batchSize * p.outHeight * p.outWidth * p.filterHeight * p.filterWidth * p.inChannels;
    const threads = threadsFor(kernels, work, p.batchSize, MIN_WORK_PER_THREAD);
    runRowKernel(
      kernels,
      name,
      new Array<number>(threads).fill(heapOffset(b, dx)),
      [...operands.map((t) => heapOffset(b, t)), ...shapeArgs(p)],
      p.batchSize,
    );
  } catch (e) {
    b.disposeData(dx.dataId);
    throw e;
  }
  return dx;
}

let stockMaxPoolGradKernel: tf.KernelFunc | undefined;
let stockAvgPoolGrad: tf.KernelFunc | undefined;

/**
 * Max pooling's gradient in plain JS on the heap, for where our kernels cannot run: tfjs's wasm
 * MaxPoolGrad is wrong (gradients dropped or misplaced, e.g. for one-channel inputs or a 1x1 pool).
 * The same scatter as the C kernel: each window's first largest value gets its dy.
 */
function maxPoolGradJs(b: WasmHeapBackend, x: Info, dy: Info, p: tf.backend_util.Conv2DInfo): Info {
  const dx = b.makeOutput(x.shape, 'float32');
  const heap = b.wasm.HEAPU8.buffer;
  const view = (t: Info) =>
    new Float32Array(heap, heapOffset(b, t), tf.util.sizeFromShape(t.shape));
  const [xs, gs, out] = [view(x), view(dy), view(dx)];
  out.fill(0);
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = p;
  for (let n = 0; n < p.batchSize; n++)
    for (let oh = 0; oh < Ho; oh++)
      for (let ow = 0; ow < Wo; ow++)
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (
            let ih = Math.max(0, oh * p.strideHeight - p.padInfo.top);
            ih < Math.min(H, oh * p.strideHeight - p.padInfo.top + p.filterHeight);
            ih++
          )
            for (
              let iw = Math.max(0, ow * p.strideWidth - p.padInfo.left);
              iw < Math.min(W, ow * p.strideWidth - p.padInfo.left + p.filterWidth);
              iw++
            ) {
              const i = ((n * H + ih) * W + iw) * C + c;
              if (xs[i] > best) {
                best = xs[i];
                at = i;
              }
            }
          if (at >= 0) out[at] += gs[((n * Ho + oh) * Wo + ow) * C + c];
        }
  return dx;
}

function maxPoolGrad(args: PoolArgs): Info {
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const b = args.backend as WasmHeapBackend;
  const p = poolInfo(input.shape, args.attrs as Attrs);
  const direct = poolGradWithKernel(b, 'max_pool_grad', [input, dy], p);
  if (direct) return direct;
  const plain =
    input.dtype === 'float32' &&
    dy.dtype === 'float32' &&
    p.dilationHeight === 1 &&
    p.dilationWidth === 1;
  return plain
    ? maxPoolGradJs(b, input, dy, p)
    : (stockMaxPoolGradKernel!(args as Parameters<tf.KernelFunc>[0]) as Info);
}

/** The wasm AvgPoolGrad kernel: the exact gradient on our kernel, tfjs's where ours cannot run. */
function avgPoolGrad(args: PoolArgs): Info {
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const p = poolInfo(input.shape, args.attrs as Attrs);
  return (
    poolGradWithKernel(args.backend as WasmHeapBackend, 'avg_pool_grad', [dy], p) ??
    (stockAvgPoolGrad!(args as Parameters<tf.KernelFunc>[0]) as Info)
  );
}

/** Whether the current backend's AvgPoolGrad is ours on our kernels (it divides by the forward pass's counts). */
const exactAvgPoolGrad = () =>
  tf.getKernel('AvgPoolGrad', tf.getBackend())?.kernelFunc === (avgPoolGrad as tf.KernelFunc) &&
  wasmKernelPool(tf.backend() as unknown as WasmHeapBackend) !== null;

/** kh·kw / (positions of each window inside the image), [1, Ho, Wo, 1]: what turns tfjs's AvgPoolGrad into the exact one. */
function windowScale(p: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const counts = (out: number, stride: number, pad: number, k: number, size: number) =>
    Array.from(
      { length: out },
      (_, o) => Math.min(size, o * stride - pad + k) - Math.max(0, o * stride - pad),
    );
  const rows = counts(p.outHeight, p.strideHeight, p.padInfo.top, p.filterHeight, p.inHeight);
  const cols = counts(p.outWidth, p.strideWidth, p.padInfo.left, p.filterWidth, p.inWidth);
  const full = p.filterHeight * p.filterWidth;
  const scale = new Float32Array(p.outHeight * p.outWidth);
  for (let i = 0; i < rows.length; i++)
    for (let j = 0; j < cols.length; j++)
      scale[i * cols.length + j] = full / Math.max(1, rows[i] * cols[j]);
  return tf.tensor4d(scale, [1, p.outHeight, p.outWidth, 1]);
}

const avgPoolGradient: tf.GradConfig = {
  kernelName: 'AvgPool',
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved as [tf.Tensor4D];
    const a = attrs as unknown as Attrs;
    const kernelAttrs = {
      filterSize: a.filterSize,
      strides: a.strides,
      pad: a.pad,
      dimRoundingMode: a.dimRoundingMode,
    } as unknown as tf.NamedAttrMap;
    return {
      x: () => {
        let g = dy as tf.Tensor4D;
        if (!exactAvgPoolGrad()) {
          const p = poolInfo(x.shape, a);
          if (p.padInfo.top || p.padInfo.left || p.padInfo.bottom || p.padInfo.right)
            g = tf.mul(g, windowScale(p));
        }
        return tf.engine().runKernel('AvgPoolGrad', { dy: g, input: x }, kernelAttrs) as tf.Tensor;
      },
    };
  },
};

/** tfjs's own wasm MaxPoolGrad (kept for other dtypes; tests show what it gets wrong). */
export const stockMaxPoolGrad = (): tf.KernelFunc => stockMaxPoolGradKernel!;

/** Registers our MaxPoolGrad and AvgPoolGrad for wasm (idempotent). */
export function registerWasmPoolGradients(): void {
  stockMaxPoolGradKernel =
    replaceWasmKernel('MaxPoolGrad', maxPoolGrad as tf.KernelFunc) ?? stockMaxPoolGradKernel;
  stockAvgPoolGrad =
    replaceWasmKernel('AvgPoolGrad', avgPoolGrad as tf.KernelFunc) ?? stockAvgPoolGrad;
}

/** Registers the exact AvgPool gradient for every backend. */
export function registerAvgPoolGradient(): void {
  tf.registerGradient(avgPoolGradient);
}
