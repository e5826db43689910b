/**
 * Convolutions and their gradients for the wasm backend.
 *
 * tfjs-backend-wasm has no Conv2DBackpropFilter kernel (a training step fails) and its
 * Conv2DBackpropInput is a naive single-threaded loop about 10× slower than the forward conv. We
 * register Conv2D and both gradients: each runs our SIMD kernels (wasm-conv-kernels.ts) and, where
 * they cannot run, falls back to XNNPACK — the gradients as rearranged forward convolutions:
 *  - dx = conv(dy, filter rotated 180° with in/out channels swapped), padded so the output has
 *    the input's size; for stride > 1, one such conv per output phase with the taps that reach
 *    it (together the cost of the forward conv), interleaved;
 *  - dW = conv(x as [Cin, H, W, N], dy as a [Ho, Wo, N, Cout] filter, dilation = stride), which
 *    yields dW as [Cin, kh, kw, Cout].
 * Tests check both against the cpu backend's reference kernels.
 */
import tf from '#tfjs';
// Its kernels must be registered first: ours replace its Conv2DBackpropInput.
import '@tensorflow/tfjs-backend-wasm';
import {
  backpropInputWithKernel,
  conv2dWithKernel,
  filterGradWithKernel,
} from './wasm-conv-kernels.js';
import { CONV2D_BIAS } from '../ops/conv-bias.js';
import { CONV2D_BIAS_RELU } from '../ops/conv-bias-relu.js';
import { type ConvShape, type WasmHeapBackend, wasmKernelPool } from './wasm-kernels.js';
import { type Backend, type KernelCall, KernelRunner } from './wasm-kernel-runner.js';
import { elementwise } from './wasm-elementwise.js';
import { dilateByStride } from './wasm-dilate.js';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;

function geometry(xShape: number[], filterShape: number[], attrs: Attrs): ConvShape {
  if (attrs.dataFormat === 'NCHW') throw new Error('wasm conv gradients support NHWC only');
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

const explicitPad = (top: number, bottom: number, left: number, right: number) => [
  [0, 0],
  [top, bottom],
  [left, right],
  [0, 0],
];

function conv2dBackpropFilter({ inputs, attrs, backend }: KernelCall): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as Attrs;
  const g = geometry(x.shape, a.filterShape as number[], a);
  const direct = filterGradWithKernel(backend as WasmHeapBackend, x, dy, g);
  if (direct) return direct;
  const k = new KernelRunner(backend as Backend);
  // Output rows a = 0..kh-1 read rows a + i·sh (i < outH) of the padded input.
  const extentH = (g.outH - 1) * g.sh + 1;
  const extentW = (g.outW - 1) * g.sw + 1;
  let bottom = g.kh - 1 + extentH - g.inH - g.top;
  let right = g.kw - 1 + extentW - g.inW - g.left;
  let xt = k.run('Transpose', { x }, { perm: [3, 1, 2, 0] }); // [Cin, H, W, N]
  if (bottom < 0 || right < 0) {
    // Rows/columns past the last window never meet dy: drop them instead of padding negatively.
    const h = g.inH + Math.min(bottom, 0);
    const w = g.inW + Math.min(right, 0);
    xt = k.run('Slice', { x: xt }, { begin: [0, 0, 0, 0], size: [g.inC, h, w, g.batch] });
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const dyt = k.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [Ho, Wo, N, Cout]
  const dw = k.run(
    'Conv2D',
    { x: xt, filter: dyt },
    {
      strides: [1, 1],
      pad: explicitPad(g.top, bottom, g.left, right),
      dataFormat: 'NHWC',
      dilations: [g.sh, g.sw],
    },
  ); // [Cin, kh, kw, Cout]
  return k.finish(k.run('Transpose', { x: dw }, { perm: [1, 2, 0, 3] }));
}

/**
 * dx as a forward conv of dy with the filter rotated 180° and its channels swapped. For stride > 1
 * dy first gets s − 1 zero rows/columns inserted after each one (cheap for 1×1 filters; wider
 * filters take the phase split below, which skips the zeros).
 */
function backpropInputDirect(k: KernelRunner, dy: Info, filter: Info, g: ConvShape): Info {
  const dilated = dilateByStride(k, dy, [g.batch, g.outH, g.outW, g.outC], [g.sh, g.sw]);
  const { h, w } = dilated;
  let grad = dilated.grad;
  const top = g.kh - 1 - g.top;
  const left = g.kw - 1 - g.left;
  let bottom = g.inH + g.kh - 1 - h - top;
  let right = g.inW + g.kw - 1 - w - left;
  if (top < 0 || left < 0)
    throw new Error('wasm conv gradient: padding larger than the filter is not supported');
  if (bottom < 0 || right < 0) {
    grad = k.run(
      'Slice',
      { x: grad },
      {
        begin: [0, 0, 0, 0],
        size: [g.batch, h + Math.min(bottom, 0), w + Math.min(right, 0), g.outC],
      },
    );
    bottom = Math.max(bottom, 0);
    right = Math.max(right, 0);
  }
  const rotated = k.run('Reverse', { x: filter }, { dims: [0, 1] });
  const swapped = k.run('Transpose', { x: rotated }, { perm: [0, 1, 3, 2] }); // [kh, kw, Cout, Cin]
  return k.run(
    'Conv2D',
    { x: grad, filter: swapped },
    {
      strides: [1, 1],
      pad: explicitPad(top, bottom, left, right),
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
  );
}

/**
 * dx of a strided conv, split by output phase. With padded input row q = s·m + r, only filter
 * taps k ≡ r (mod s) reach it: dx[q] = Σ_j dy[m − j]·w[r + j·s]. Each of the s_h·s_w phases is a
 * stride-1 conv of dy with that sub-filter (reversed), so together they cost one forward conv —
 * instead of a conv over dy with zeros inserted, s_h·s_w times larger. The phases are then
 * interleaved (stack, transpose, reshape) and the padding cropped.
 */
function backpropInputStrided(k: KernelRunner, dy: Info, filter: Info, g: ConvShape): Info {
  const [sh, sw] = [g.sh, g.sw];
  // Rows m = 0..rows(r)−1 of phase r cover padded rows up to inH − 1 + top.
  const rows = (r: number, size: number, pad: number, s: number) =>
    Math.max(0, Math.floor((size - 1 + pad - r) / s) + 1);
  const maxRows = rows(0, g.inH, g.top, sh);
  const maxCols = rows(0, g.inW, g.left, sw);
  const phases: Info[] = [];
  for (let ra = 0; ra < sh; ra++) {
    for (let rb = 0; rb < sw; rb++) {
      const ja = Math.max(0, Math.ceil((g.kh - ra) / sh));
      const jb = Math.max(0, Math.ceil((g.kw - rb) / sw));
      const ma = rows(ra, g.inH, g.top, sh);
      const mb = rows(rb, g.inW, g.left, sw);
      if (ja === 0 || jb === 0 || ma === 0 || mb === 0) {
        phases.push(
          k.run(
            'Fill',
            {},
            { shape: [g.batch, maxRows, maxCols, g.inC], value: 0, dtype: 'float32' },
          ),
        );
        continue;
      }
      const sub = k.run(
        'StridedSlice',
        { x: filter },
        {
          begin: [ra, rb, 0, 0],
          end: [g.kh, g.kw, g.inC, g.outC],
          strides: [sh, sw, 1, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        },
      ); // [ja, jb, Cin, Cout]
      const swapped = k.run(
        'Transpose',
        { x: k.run('Reverse', { x: sub }, { dims: [0, 1] }) },
        { perm: [0, 1, 3, 2] },
      );
      // Full correlation: ja − 1 zero rows above dy; below, as many as phase rows need.
      const bottom = Math.max(0, ma - g.outH);
      const right = Math.max(0, mb - g.outW);
      let out = k.run(
        'Conv2D',
        { x: dy, filter: swapped },
        {
          strides: [1, 1],
          pad: explicitPad(ja - 1, bottom, jb - 1, right),
          dataFormat: 'NHWC',
          dilations: [1, 1],
        },
      );
      if (out.shape[1] !== ma || out.shape[2] !== mb)
        out = k.run('Slice', { x: out }, { begin: [0, 0, 0, 0], size: [g.batch, ma, mb, g.inC] });
      if (ma !== maxRows || mb !== maxCols)
        out = k.run(
          'PadV2',
          { x: out },
          {
            paddings: [
              [0, 0],
              [0, maxRows - ma],
              [0, maxCols - mb],
              [0, 0],
            ],
            constantValue: 0,
          },
        );
      phases.push(out);
    }
  }
  // [sh·sw·N, M, M', C] (the kernel takes an array) → [N, M, sh, M', sw, C] → [N, M·sh, M'·sw, C]: row s·m + r holds phase r.
  const joined =
    phases.length === 1
      ? phases[0]
      : k.run('Concat', phases as unknown as Record<string, Info>, { axis: 0 });
  const stacked = k.run(
    'Reshape',
    { x: joined },
    { shape: [sh, sw, g.batch, maxRows, maxCols, g.inC] },
  );
  const interleaved = k.run('Transpose', { x: stacked }, { perm: [2, 3, 0, 4, 1, 5] });
  const grid = k.run(
    'Reshape',
    { x: interleaved },
    { shape: [g.batch, maxRows * sh, maxCols * sw, g.inC] },
  );
  if (g.top === 0 && g.left === 0 && maxRows * sh === g.inH && maxCols * sw === g.inW) return grid;
  return k.run(
    'Slice',
    { x: grid },
    { begin: [0, g.top, g.left, 0], size: [g.batch, g.inH, g.inW, g.inC] },
  );
}

function conv2dBackpropInput({ inputs, attrs, backend }: KernelCall): Info {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as Attrs;
  const g = geometry(a.inputShape as number[], filter.shape, a);
  const direct = backpropInputWithKernel(backend as WasmHeapBackend, dy, filter, g);
  if (direct) return direct;
  const k = new KernelRunner(backend as Backend);
  // Filters wider than the stride overlap: the phase split saves the conv over inserted zeros.
  const overlapping = (g.sh > 1 || g.sw > 1) && (g.kh > g.sh || g.kw > g.sw);
  return k.finish(
    overlapping ? backpropInputStrided(k, dy, filter, g) : backpropInputDirect(k, dy, filter, g),
  );
}

// tfjs's own (XNNPACK) Conv2D, for what our kernel does not cover: dilation, other dtypes. The
// kernel registry is global: if a copy of this module registered already, take the stock one it kept.
const STOCK = Symbol.for('robust.stockKernel');
type Kept = tf.KernelFunc & { [STOCK]?: tf.KernelFunc };
const registeredConv2D = tf.getKernel('Conv2D', 'wasm')!;
const stockConv2D: tf.KernelFunc =
  (registeredConv2D.kernelFunc as Kept)[STOCK] ?? registeredConv2D.kernelFunc;

function conv2d({ inputs, attrs, backend }: KernelCall): Info {
  const { x, filter } = inputs as { x: Info; filter: Info };
  const a = attrs as Attrs;
  const dilations = a.dilations as number | [number, number] | undefined;
  const undilated =
    dilations === undefined ||
    (Array.isArray(dilations) ? dilations.every((d) => d === 1) : dilations === 1);
  if (undilated && a.dataFormat !== 'NCHW') {
    const direct = conv2dWithKernel(
      backend as WasmHeapBackend,
      x,
      filter,
      geometry(x.shape, filter.shape, a),
    );
    if (direct) return direct;
  }
  return stockConv2D({ inputs, attrs, backend } as Parameters<tf.KernelFunc>[0]) as Info;
}
(conv2d as Kept)[STOCK] = stockConv2D;

/** conv2d + bias (backend/conv-bias.ts): the bias added by our kernels, else a conv and an Add. */
function conv2dBias({ inputs, attrs, backend }: KernelCall): Info {
  const { x, filter, bias } = inputs as { x: Info; filter: Info; bias: Info };
  const a = { ...(attrs as Attrs), dataFormat: 'NHWC', dilations: 1 };
  const fused = conv2dWithKernel(
    backend as WasmHeapBackend,
    x,
    filter,
    geometry(x.shape, filter.shape, a),
    bias,
  );
  if (fused) return fused;
  const k = new KernelRunner(backend as Backend);
  const y = conv2d({ inputs: { x, filter }, attrs: a as tf.NamedAttrMap, backend });
  const out = k.run('Add', { a: y, b: bias });
  (backend as Backend).disposeData(y.dataId);
  return k.finish(out);
}

/**
 * relu(conv2d + bias [+ residual]) (backend/ops/conv-bias-relu.ts): the Add and the ReLU in our
 * kernels' epilogue, else conv2dBias and one SIMD pass of each.
 */
function conv2dBiasRelu({ inputs, attrs, backend }: KernelCall): Info {
  const { x, filter, bias, residual } = inputs as {
    x: Info;
    filter: Info;
    bias: Info;
    residual?: Info;
  };
  const b = backend as WasmHeapBackend;
  const a = { ...(attrs as Attrs), dataFormat: 'NHWC', dilations: 1 };
  const g = geometry(x.shape, filter.shape, a);
  const fused = conv2dWithKernel(b, x, filter, g, bias, { residual: residual ?? null, relu: true });
  if (fused) return fused;
  const k = new KernelRunner(backend as Backend);
  const y = conv2dBias({ inputs: { x, filter, bias }, attrs: a as tf.NamedAttrMap, backend });
  const out = k.run('Relu', { x: residual ? k.run('Add', { a: y, b: residual }) : y });
  b.disposeData(y.dataId);
  return k.finish(out);
}

const registeredFused = tf.getKernel('FusedConv2D', 'wasm')!;
const stockFusedConv2D: tf.KernelFunc =
  (registeredFused.kernelFunc as Kept)[STOCK] ?? registeredFused.kernelFunc;

/**
 * FusedConv2D (every conv of a converted graph model, with its folded BatchNorm as the bias):
 * the conv and bias on our kernels, ReLU in their epilogue, ReLU6 as one more SIMD pass. tfjs's XNNPACK kernel
 * waits on its own thread pool for every call; other activations, dilations and layouts keep it.
 */
function fusedConv2d(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): Info {
  const { x, filter, bias } = args.inputs as { x: Info; filter: Info; bias?: Info };
  const a = args.attrs as Attrs;
  const b = args.backend as WasmHeapBackend;
  const activation = (a.activation as string | undefined) ?? 'linear';
  const dilations = a.dilations as number | [number, number] | undefined;
  const undilated =
    dilations === undefined ||
    (Array.isArray(dilations) ? dilations.every((d) => d === 1) : dilations === 1);
  const simple =
    undilated &&
    a.dataFormat !== 'NCHW' &&
    ['linear', 'relu', 'relu6'].includes(activation) &&
    (!bias || (bias.shape.length === 1 && bias.shape[0] === filter.shape[3]));
  const kernels = simple ? wasmKernelPool(b) : null;
  if (kernels) {
    // ReLU in the kernels' epilogue; ReLU6 as one more pass
    const relu = activation === 'relu';
    const y = conv2dWithKernel(b, x, filter, geometry(x.shape, filter.shape, a), bias ?? null, {
      residual: null,
      relu,
    });
    if (y && (activation === 'linear' || relu)) return y;
    if (y) {
      try {
        return elementwise(b, kernels, activation, y.shape, [y]);
      } finally {
        b.disposeData(y.dataId);
      }
    }
  }
  return stockFusedConv2D(args as Parameters<tf.KernelFunc>[0]) as Info;
}
(fusedConv2d as Kept)[STOCK] = stockFusedConv2D;

export const wasmConvGradientKernels: tf.KernelConfig[] = [
  // The stock set-up binds the XNNPACK entry point that our fallback calls.
  {
    kernelName: 'Conv2D',
    backendName: 'wasm',
    kernelFunc: conv2d as tf.KernelFunc,
    setupFunc: registeredConv2D.setupFunc,
  },
  {
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: conv2dBackpropFilter as tf.KernelFunc,
  },
  {
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: conv2dBackpropInput as tf.KernelFunc,
  },
  { kernelName: CONV2D_BIAS, backendName: 'wasm', kernelFunc: conv2dBias as tf.KernelFunc },
  {
    kernelName: CONV2D_BIAS_RELU,
    backendName: 'wasm',
    kernelFunc: conv2dBiasRelu as tf.KernelFunc,
  },
  {
    kernelName: 'FusedConv2D',
    backendName: 'wasm',
    kernelFunc: fusedConv2d as tf.KernelFunc,
    setupFunc: registeredFused.setupFunc,
  },
];

/** Registers the fast conv gradient kernels for the wasm backend (idempotent). */
export function registerWasmConvGradients(): void {
  for (const config of wasmConvGradientKernels) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing?.kernelFunc === config.kernelFunc) continue;
    if (existing) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}
