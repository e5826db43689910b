/**
 * The depthwise convolution on wasm: its gradients, which tfjs-backend-wasm lacks altogether
 * (DepthwiseConv2dNativeBackpropInput and …BackpropFilter: without them no MobileNet or
 * EfficientNet graph model can be attacked there), and the forward op, plain and fused with a
 * bias and ReLU / ReLU6 (tfjs's XNNPACK kernel returns zeros for SAME-padded convs whose filter is
 * 1 wide along a strided axis, and is ~2x slower than ours on 5x5 filters).
 *
 * All run on our SIMD kernels (backend/kernels/depthwise.c), split by rows across the kernel
 * threads, for every stride, padding (SAME, VALID, explicit) and dilation, and any channel
 * multiplier. Where our kernels cannot run, the forward ops are tfjs's and the gradients
 * compositions of tfjs's wasm ops:
 *  - dx = depthwise conv (XNNPACK) of dy — zero-inserted for strides > 1 — with the filter rotated
 *    180°, padded so the output has the input's size; for a multiplier M > 1 the M channels of each
 *    input channel are then summed;
 *  - dW, one tap at a time: the strided window of the padded x that meets dy, times dy, summed
 *    over batch, rows and columns.
 * Tests check both paths against the cpu backend's kernels.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  type WasmHeapBackend,
  heapOffset,
  runChunkedSum,
  runRowKernel,
  sumChunks,
  threadsFor,
  wasmKernelPool,
  withHeapBuffer,
} from './wasm-kernels.js';
import { replaceWasmKernel } from './wasm-replace-kernel.js';
import type { WasmKernelPool } from './wasm-kernel-pool.js';
import { dilateByStride } from './wasm-dilate.js';
import { type Backend, type KernelCall, KernelRunner } from './wasm-kernel-runner.js';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;

/** A depthwise conv's shape, NHWC, filter [kh, kw, C, M]. */
interface DepthwiseShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  mult: number;
  outH: number;
  outW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
}

function depthwiseGeometry(xShape: number[], filterShape: number[], a: Attrs): DepthwiseShape {
  if (a.dataFormat === 'NCHW') throw new Error('wasm depthwise conv gradients support NHWC only');
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides as [number, number] | number,
    (a.dilations as [number, number] | number | undefined) ?? 1,
    a.pad as 'same' | 'valid' | number,
    a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    true,
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    mult: filterShape[3],
    outH: info.outHeight,
    outW: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

const float32 = (...ts: Info[]) => ts.every((t) => t.dtype === 'float32');
const macs = (s: DepthwiseShape) => s.batch * s.outH * s.outW * s.kh * s.kw * s.inC * s.mult;
// The kernels' shape arguments; C is the channel count they see (the output channels when M > 1).
const shapeArgs = (s: DepthwiseShape, C: number) => [
  s.inH,
  s.inW,
  C,
  s.outH,
  s.outW,
  s.kh,
  s.kw,
  s.sh,
  s.sw,
  s.dh,
  s.dw,
  s.top,
  s.left,
];
// Widening and summing channels is one pass over memory: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/** Runs `body` with a temporary float32 heap tensor of `shape`; frees it after. */
function withTemp<T>(b: WasmHeapBackend, shape: number[], body: (t: Info) => T): T {
  const t = b.makeOutput(shape, 'float32');
  try {
    return body(t);
  } finally {
    b.disposeData(t.dataId);
  }
}

/** Runs `fill(out)` on a new output of `shape`, freeing it if `fill` throws. */
function output(b: WasmHeapBackend, shape: number[], fill: (out: Info) => void): Info {
  const out = b.makeOutput(shape, 'float32');
  try {
    fill(out);
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/** M > 1: widens or sums the channel axis of [N, H, W, ·] (depthwise_expand / depthwise_reduce) over N·H rows. */
function channelPass(
  b: WasmHeapBackend,
  kernels: WasmKernelPool,
  name: string,
  out: Info,
  src: Info,
  s: DepthwiseShape,
  h: number,
  w: number,
): void {
  const rows = s.batch * h;
  const threads = threadsFor(kernels, rows * w * s.inC * s.mult, rows, MIN_FLOATS_PER_THREAD);
  runRowKernel(
    kernels,
    name,
    new Array<number>(threads).fill(heapOffset(b, out)),
    [heapOffset(b, src), w, s.inC, s.mult],
    rows,
  );
}

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };

/** y = act(depthwise(x, filter) + bias), [N, Ho, Wo, C·M], on our kernels; null where they cannot run. */
function depthwiseConv2dWithKernel(
  b: WasmHeapBackend,
  x: Info,
  filter: Info,
  s: DepthwiseShape,
  bias: Info | null = null,
  activation = 'linear',
): Info | null {
  const Co = s.inC * s.mult;
  const act = ACTIVATIONS[activation];
  const biasFits = bias === null || (bias.shape.length === 1 && bias.shape[0] === Co);
  const kernels =
    float32(x, filter, ...(bias ? [bias] : [])) && biasFits && act !== undefined
      ? wasmKernelPool(b)
      : null;
  if (!kernels) return null;
  const rows = s.batch * s.outH;
  const threads = threadsFor(kernels, macs(s), rows);
  const run = (src: Info) =>
    output(b, [s.batch, s.outH, s.outW, Co], (out) =>
      withHeapBuffer(b, Co, (zeros) => {
        if (!bias) kernels.run('zero', [[zeros, Co]]);
        const args = [
          heapOffset(b, src),
          heapOffset(b, filter),
          bias ? heapOffset(b, bias) : zeros,
          act,
          ...shapeArgs(s, Co),
        ];
        runRowKernel(
          kernels,
          'depthwise_conv2d',
          new Array<number>(threads).fill(heapOffset(b, out)),
          args,
          rows,
        );
      }),
    );
  if (s.mult === 1) return run(x);
  return withTemp(b, [s.batch, s.inH, s.inW, Co], (xe) => {
    channelPass(b, kernels, 'depthwise_expand', xe, x, s, s.inH, s.inW);
    return run(xe);
  });
}

/** dx, [N, H, W, C], on our kernels; null where they cannot run. */
function depthwiseBackpropInputWithKernel(
  b: WasmHeapBackend,
  dy: Info,
  filter: Info,
  s: DepthwiseShape,
): Info | null {
  const kernels = float32(dy, filter) ? wasmKernelPool(b) : null;
  if (!kernels) return null;
  const rows = s.batch * s.inH;
  const threads = threadsFor(kernels, macs(s), rows);
  const run = (target: Info, C: number) =>
    runRowKernel(
      kernels,
      'depthwise_backprop_input',
      new Array<number>(threads).fill(heapOffset(b, target)),
      [heapOffset(b, dy), heapOffset(b, filter), ...shapeArgs(s, C)],
      rows,
    );
  const shape = [s.batch, s.inH, s.inW, s.inC];
  if (s.mult === 1) return output(b, shape, (out) => run(out, s.inC));
  // In the output channels' space (the filter's [C, M] axes are one), then each input channel's M summed.
  return output(b, shape, (out) =>
    withTemp(b, [s.batch, s.inH, s.inW, s.inC * s.mult], (t) => {
      run(t, s.inC * s.mult);
      channelPass(b, kernels, 'depthwise_reduce', out, t, s, s.inH, s.inW);
    }),
  );
}

/** dW, [kh, kw, C, M], on our kernels; null where they cannot run. */
function depthwiseFilterGradWithKernel(
  b: WasmHeapBackend,
  x: Info,
  dy: Info,
  s: DepthwiseShape,
): Info | null {
  const kernels = float32(x, dy) ? wasmKernelPool(b) : null;
  if (!kernels) return null;
  const Co = s.inC * s.mult;
  const size = s.kh * s.kw * Co;
  const rows = s.batch * s.outH;
  const chunks = sumChunks(rows, macs(s), size);
  const threads = threadsFor(kernels, macs(s), chunks.count);
  // Summed per chunk of rows (fixed by the shape), the chunks added in order: the same on any threads.
  const run = (src: Info) =>
    output(b, [s.kh, s.kw, s.inC, s.mult], (out) =>
      runChunkedSum(b, kernels, 'depthwise_filter_grad', {
        out: heapOffset(b, out),
        floats: size,
        args: [heapOffset(b, src), heapOffset(b, dy), ...shapeArgs(s, Co)],
        rows,
        chunks,
        threads,
      }),
    );
  if (s.mult === 1) return run(x);
  // x widened to the output channels, so that each lines up with its channel of dy.
  return withTemp(b, [s.batch, s.inH, s.inW, Co], (xe) => {
    channelPass(b, kernels, 'depthwise_expand', xe, x, s, s.inH, s.inW);
    return run(xe);
  });
}

const explicitPad = (top: number, bottom: number, left: number, right: number) => [
  [0, 0],
  [top, bottom],
  [left, right],
  [0, 0],
];

/** dx from tfjs's wasm ops (see the module comment). */
function backpropInputComposed(k: KernelRunner, dy: Info, filter: Info, s: DepthwiseShape): Info {
  const Co = s.inC * s.mult;
  let { grad, h, w } = dilateByStride(k, dy, [s.batch, s.outH, s.outW, Co], [s.sh, s.sw]);
  // Full correlation with the dilated filter: ekh − 1 − top rows of zeros above, what makes H below.
  const ekh = (s.kh - 1) * s.dh + 1;
  const ekw = (s.kw - 1) * s.dw + 1;
  let top = ekh - 1 - s.top;
  let left = ekw - 1 - s.left;
  if (top < 0 || left < 0) {
    // Padding wider than the filter: rows of dy that no input row reaches.
    grad = k.run(
      'Slice',
      { x: grad },
      {
        begin: [0, Math.max(0, -top), Math.max(0, -left), 0],
        size: [s.batch, h - Math.max(0, -top), w - Math.max(0, -left), Co],
      },
    );
    h -= Math.max(0, -top);
    w -= Math.max(0, -left);
    top = Math.max(0, top);
    left = Math.max(0, left);
  }
  let bottom = s.inH + ekh - 1 - h - top;
  let right = s.inW + ekw - 1 - w - left;
  if (bottom < 0 || right < 0) {
    grad = k.run(
      'Slice',
      { x: grad },
      { begin: [0, 0, 0, 0], size: [s.batch, h + Math.min(bottom, 0), w + Math.min(right, 0), Co] },
    );
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const flat = k.run('Reshape', { x: filter }, { shape: [s.kh, s.kw, Co, 1] });
  const rotated = k.run('Reverse', { x: flat }, { dims: [0, 1] });
  const t = k.run(
    'DepthwiseConv2dNative',
    { x: grad, filter: rotated },
    {
      strides: [1, 1],
      pad: explicitPad(top, bottom, left, right),
      dilations: [s.dh, s.dw],
      dataFormat: 'NHWC',
    },
  );
  if (s.mult === 1) return t;
  const split = k.run('Reshape', { x: t }, { shape: [s.batch, s.inH, s.inW, s.inC, s.mult] });
  return k.run('Sum', { x: split }, { axis: [4], keepDims: false });
}

/** dW from tfjs's wasm ops, one tap at a time (see the module comment). */
function filterGradComposed(k: KernelRunner, x: Info, dy: Info, s: DepthwiseShape): Info {
  // Rows a·dh + oh·sh of x padded by `top` meet dy: pad below as far as the last one reaches.
  const extentH = (s.outH - 1) * s.sh + (s.kh - 1) * s.dh + 1;
  const extentW = (s.outW - 1) * s.sw + (s.kw - 1) * s.dw + 1;
  const bottom = Math.max(0, extentH - s.inH - s.top);
  const right = Math.max(0, extentW - s.inW - s.left);
  const padded =
    s.top || s.left || bottom || right
      ? k.run(
          'PadV2',
          { x },
          { paddings: explicitPad(s.top, bottom, s.left, right), constantValue: 0 },
        )
      : x;
  const dyWide =
    s.mult === 1
      ? dy
      : k.run('Reshape', { x: dy }, { shape: [s.batch, s.outH, s.outW, s.inC, s.mult] });
  const taps: Info[] = [];
  for (let a = 0; a < s.kh; a++) {
    for (let b = 0; b < s.kw; b++) {
      let window = k.run(
        'StridedSlice',
        { x: padded },
        {
          begin: [0, a * s.dh, b * s.dw, 0],
          end: [
            s.batch,
            a * s.dh + (s.outH - 1) * s.sh + 1,
            b * s.dw + (s.outW - 1) * s.sw + 1,
            s.inC,
          ],
          strides: [1, s.sh, s.sw, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        },
      ); // [N, Ho, Wo, C]
      if (s.mult > 1)
        window = k.run('Reshape', { x: window }, { shape: [s.batch, s.outH, s.outW, s.inC, 1] });
      const sum = k.run(
        'Sum',
        { x: k.run('Multiply', { a: window, b: dyWide }) },
        { axis: [0, 1, 2], keepDims: false },
      );
      taps.push(k.run('Reshape', { x: sum }, { shape: [1, s.inC * s.mult] }));
    }
  }
  const joined =
    taps.length === 1
      ? taps[0]
      : k.run('Concat', taps as unknown as Record<string, Info>, { axis: 0 });
  return k.run('Reshape', { x: joined }, { shape: [s.kh, s.kw, s.inC, s.mult] });
}

function backpropInput({ inputs, attrs, backend }: KernelCall): Info {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const s = depthwiseGeometry(
    (attrs as Attrs).inputShape as number[],
    filter.shape,
    attrs as Attrs,
  );
  const direct = depthwiseBackpropInputWithKernel(backend as WasmHeapBackend, dy, filter, s);
  if (direct) return direct;
  const k = new KernelRunner(backend as Backend);
  return k.finish(backpropInputComposed(k, dy, filter, s));
}

function backpropFilter({ inputs, attrs, backend }: KernelCall): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const s = depthwiseGeometry(x.shape, (attrs as Attrs).filterShape as number[], attrs as Attrs);
  const direct = depthwiseFilterGradWithKernel(backend as WasmHeapBackend, x, dy, s);
  if (direct) return direct;
  const k = new KernelRunner(backend as Backend);
  return k.finish(filterGradComposed(k, x, dy, s));
}

let stockDepthwise: tf.KernelFunc | undefined;
let stockFusedDepthwise: tf.KernelFunc | undefined;

function depthwiseConv2d(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): Info {
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const a = args.attrs as Attrs;
  if (a.dataFormat !== 'NCHW') {
    const direct = depthwiseConv2dWithKernel(
      args.backend as WasmHeapBackend,
      x,
      filter,
      depthwiseGeometry(x.shape, filter.shape, a),
    );
    if (direct) return direct;
  }
  return stockDepthwise!(args as Parameters<tf.KernelFunc>[0]) as Info;
}

function fusedDepthwiseConv2d(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): Info {
  const { x, filter, bias } = args.inputs as { x: Info; filter: Info; bias?: Info };
  const a = args.attrs as Attrs;
  if (a.dataFormat !== 'NCHW') {
    const s = depthwiseGeometry(x.shape, filter.shape, a);
    const direct = depthwiseConv2dWithKernel(
      args.backend as WasmHeapBackend,
      x,
      filter,
      s,
      bias ?? null,
      (a.activation as string | undefined) ?? 'linear',
    );
    if (direct) return direct;
  }
  return stockFusedDepthwise!(args as Parameters<tf.KernelFunc>[0]) as Info;
}

/** Puts our depthwise conv, plain and fused, in place of tfjs's wasm kernels (idempotent). */
export function registerWasmDepthwise(): void {
  stockDepthwise =
    replaceWasmKernel('DepthwiseConv2dNative', depthwiseConv2d as tf.KernelFunc) ?? stockDepthwise;
  stockFusedDepthwise =
    replaceWasmKernel('FusedDepthwiseConv2D', fusedDepthwiseConv2d as tf.KernelFunc) ??
    stockFusedDepthwise;
  registerWasmDepthwiseGradients();
}

export const wasmDepthwiseGradientKernels: tf.KernelConfig[] = [
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: backpropInput as tf.KernelFunc,
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: backpropFilter as tf.KernelFunc,
  },
];

/** Registers the depthwise conv gradient kernels for wasm (idempotent). */
function registerWasmDepthwiseGradients(): void {
  for (const config of wasmDepthwiseGradientKernels) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing?.kernelFunc === config.kernelFunc) continue;
    if (existing) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}
