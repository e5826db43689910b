/**
 * Convolutions on tfjs's wasm heap with our SIMD kernels (backend/kernels/): the forward conv, its
 * input gradient and its filter gradient. Each returns null where the kernels cannot run (then the
 * caller takes tfjs's XNNPACK path) and a new output tensor otherwise. 3x3 stride-1 convs — most
 * of a ResNet's work — take Winograd F(4x4, 3x3) for all three (winograd4.c; F(2x2, 3x3) of
 * winograd.c with ROBUST_WINOGRAD=2); the rest the direct kernels.
 *
 * Why not XNNPACK for these: a CIFAR ResNet's convs are small (16–64 channels), and XNNPACK's
 * per-call set-up (operator creation, indirection buffers, weight packing — redone whenever the
 * filter is a new tensor, i.e. every training step and every input-gradient call) costs about as
 * much as the arithmetic; as a filter gradient, XNNPACK even repacks the activations.
 */
import tf from '#tfjs';
import {
  type ConvShape,
  type WasmHeapBackend,
  countKernelCall,
  heapOffset,
  convShapeArgs,
  runChunkedSum,
  runConvKernel,
  runRowKernel,
  sumChunks,
  threadsFor,
  wasmKernelPool,
  winogradEnabled,
  winogradTile,
  withHeapBuffer,
} from './wasm-kernels.js';
import type { WasmKernelPool } from './wasm-kernel-pool.js';

type Info = tf.TensorInfo;

const float32 = (...ts: Info[]) => ts.every((t) => t.dtype === 'float32');
const macs = (s: ConvShape) => s.batch * s.outH * s.outW * s.kh * s.kw * s.inC * s.outC;

/**
 * What a forward conv does to its output while it is still in cache (the kernels' epilogue): add
 * `residual` (the output's shape) and/or apply ReLU — the values of a separate Add and Relu.
 */
export interface ConvEpilogue {
  residual: Info | null;
  relu: boolean;
}

const NO_EPILOGUE: ConvEpilogue = { residual: null, relu: false };

/** The epilogue's kernel arguments: the residual's heap address (0 for none) and the ReLU flag. */
const epilogueArgs = (backend: WasmHeapBackend, e: ConvEpilogue) => [
  e.residual ? heapOffset(backend, e.residual) : 0,
  e.relu ? 1 : 0,
];

/** Runs `body` with a temporary heap buffer of `count` zero floats, which kernels read as padding. */
function withZeros<T>(
  backend: WasmHeapBackend,
  kernels: WasmKernelPool,
  count: number,
  body: (at: number) => T,
): T {
  return withHeapBuffer(backend, count, (at) => {
    kernels.run('zero', [[at, count]]);
    return body(at);
  });
}

/**
 * The forward conv and dx share a shape: pack the filter (`pack`: kernel, arguments after the
 * destination and the filter, packed size), then run `name(out, ...operands, packed, zeros, shape…)`
 * over the output's N·H rows, with `zeros` floats of zeros standing in for the padding. `bias`
 * (forward conv only): passed after the zeros — the zeros themselves when null — and followed by
 * the epilogue's arguments.
 */
function packedConv(
  backend: WasmHeapBackend,
  kernels: WasmKernelPool,
  name: string,
  pack: { kernel: string; args: number[]; floats: number },
  operands: Info[],
  filter: Info,
  s: ConvShape,
  outShape: number[],
  zeros: number,
  bias?: Info | null,
  epilogue: ConvEpilogue = NO_EPILOGUE,
): Info {
  const rows = outShape[0] * outShape[1];
  const out = backend.makeOutput(outShape, 'float32');
  try {
    const targets = new Array<number>(threadsFor(kernels, macs(s), rows)).fill(
      heapOffset(backend, out),
    );
    withHeapBuffer(backend, Math.max(1, pack.floats), (packed) => {
      kernels.run(pack.kernel, [[packed, heapOffset(backend, filter), ...pack.args]]);
      withZeros(backend, kernels, zeros, (z) => {
        const biasArg =
          bias === undefined
            ? []
            : [bias ? heapOffset(backend, bias) : z, ...epilogueArgs(backend, epilogue)];
        runConvKernel(
          kernels,
          name,
          targets,
          [...operands.map((t) => heapOffset(backend, t)), packed, z, ...biasArg],
          s,
          rows,
        );
      });
    });
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/** A 3x3 stride-1 correlation as winograd_conv takes it: input N x H x W x Ci, output N x Ho x Wo x Co. */
interface WinogradShape {
  N: number;
  H: number;
  W: number;
  Ci: number;
  Ho: number;
  Wo: number;
  Co: number;
  top: number;
  left: number;
}

// Tiles per work unit: enough rows of tiles that each 8-channel slice of U is reused across a few
// register tiles (small feature maps have few tiles per row), few enough that V and M stay in L2.
const WINOGRAD_TILES = 32;

/** Whether Winograd takes this conv: 3x3, stride 1, channels the SIMD widths fit. */
const winogradFits = (s: ConvShape, inC: number, outC: number) =>
  winogradEnabled() &&
  s.kh === 3 &&
  s.kw === 3 &&
  s.sh === 1 &&
  s.sw === 1 &&
  inC % 4 === 0 &&
  outC % 8 === 0;

/**
 * Work units of Winograd F(m x m, 3x3)'s tiles for shape g: rows of tiles per unit (R0 times
 * `widen`), tiles per unit (padded to 4), units, and the products' multiply-adds ((m + 2)² per tile
 * and channel pair).
 */
function winogradUnits(
  g: WinogradShape,
  m: 2 | 4 = 2,
  widen = 1,
): {
  R: number;
  tiles: number;
  units: number;
  macs: number;
} {
  const tilesW = Math.ceil(g.Wo / m);
  const tileRows = g.N * Math.ceil(g.Ho / m);
  const R = widen * baseTileRows(g, m);
  return {
    R,
    tiles: Math.ceil((R * tilesW) / 4) * 4,
    units: Math.ceil(tileRows / R),
    macs: tileRows * tilesW * (m + 2) ** 2 * g.Ci * g.Co,
  };
}

/** Rows of tiles per work unit, before widening: about WINOGRAD_TILES tiles. */
function baseTileRows(g: WinogradShape, m: 2 | 4): number {
  // F(4x4)'s tiles hold 36 matrices, not 16: half as many per unit keeps V and M in L2.
  return Math.max(
    1,
    Math.floor((m === 4 ? WINOGRAD_TILES / 2 : WINOGRAD_TILES) / Math.ceil(g.Wo / m)),
  );
}

/*
 * Wide layers take more tiles per unit (F(4x4)): each unit reads all of U (forward, dx) or reads and
 * writes all 36 * Ci * Co sums (dW), which for 256 or 512 channels are MBs from L3 — more tiles
 * share that traffic. Measured single-threaded on ResNet-18's shapes at b64 (CPU time per call,
 * alternating): forward 8x8x256 1.05-1.08x with 2x tiles, 4x4x512 1.09-1.15x; dW with 4x tiles
 * 16x16x128 1.32x, 8x8x256 1.25x, 4x4x512 1.12x; no gain at 64 channels or fewer (0.90-1.03x).
 * Forward outputs do not depend on the units; dW's sums run tile by tile in order within a chunk,
 * so widened units inside the same chunks (chunkedUnits) give the same bits.
 */
const widenForward = (g: WinogradShape) =>
  g.Ci * g.Co >= 512 * 512 ? 4 : g.Ci * g.Co >= 256 * 256 ? 2 : 1;
const widenFilterGrad = (g: WinogradShape) => (g.Ci * g.Co >= 128 * 128 ? 4 : 1);

/**
 * A forward conv's (or dx's) units on `threads` threads: wide layers widened, yet at least two
 * units a thread, so that threads finish together.
 */
function forwardUnits(g: WinogradShape, m: 2 | 4, threads: number) {
  let widen = m === 4 ? widenForward(g) : 1;
  const tileRows = g.N * Math.ceil(g.Ho / m);
  while (widen > 1 && tileRows / (widen * baseTileRows(g, m)) < 2 * threads) widen /= 2;
  return winogradUnits(g, m, widen);
}

/**
 * Rows of tiles per work unit that F(4x4) runs a 3x3 'same' conv on an N x S x S x C input with C
 * output channels in: forward (= dx) on `threads` threads, and its filter gradient — for
 * scripts/bench-winograd-phases.ts, which times the kernels' phases on the units that run.
 */
export function winograd4Rows(N: number, S: number, C: number, threads: number) {
  const g = { N, H: S, W: S, Ci: C, Ho: S, Wo: S, Co: C, top: 1, left: 1 };
  return {
    forward: forwardUnits(g, 4, threads).R,
    filterGrad: chunkedUnits(g, 4, 36 * C * C).R,
  };
}

/** The Winograd shape of forward conv s (also its filter gradient's). */
const forwardShape = (s: ConvShape): WinogradShape => ({
  N: s.batch,
  H: s.inH,
  W: s.inW,
  Ci: s.inC,
  Ho: s.outH,
  Wo: s.outW,
  Co: s.outC,
  top: s.top,
  left: s.left,
});

const winogradArgs = (g: WinogradShape, R: number) => [
  g.N,
  g.H,
  g.W,
  g.Ci,
  g.Ho,
  g.Wo,
  g.Co,
  g.top,
  g.left,
  R,
];

/**
 * y = the 3x3 stride-1 correlation of x with `filter` by Winograd F(m x m, 3x3), m = winogradTile()
 * (backend/kernels/winograd4.c, winograd.c); `transposed`: with the filter flipped and transposed,
 * i.e. the input gradient; then `epilogue`.
 */
function winogradConv(
  backend: WasmHeapBackend,
  kernels: WasmKernelPool,
  x: Info,
  filter: Info,
  transposed: boolean,
  g: WinogradShape,
  bias: Info | null = null,
  epilogue: ConvEpilogue = NO_EPILOGUE,
): Info {
  const m = winogradTile();
  const { R, tiles, units, macs } = forwardUnits(g, m, kernels.threads);
  const threads = threadsFor(kernels, macs, units);
  const X = (m + 2) ** 2; // transformed matrices
  // floats per thread: V and M (the kernels' PLANE), and for F(4x4) a border block
  const scratch = X * (tiles * (g.Ci + g.Co) + 32) + (m === 4 ? X * g.Ci : 0);
  const out = backend.makeOutput([g.N, g.Ho, g.Wo, g.Co], 'float32');
  try {
    withHeapBuffer(backend, X * g.Ci * g.Co, (U) => {
      const filterArgs = [U, heapOffset(backend, filter), g.Ci, g.Co, transposed ? 1 : 0];
      if (m === 4) {
        // threads share U's 8-channel output blocks (512x512 channels: ~10 ms a call on one)
        const blocks = g.Co / 8;
        const parts = threadsFor(kernels, 36 * 9 * g.Ci * g.Co, blocks);
        const share = (p: number) => [
          Math.floor((p * blocks) / parts),
          Math.floor(((p + 1) * blocks) / parts),
        ];
        kernels.run(
          'winograd4_filter',
          Array.from({ length: parts }, (_, p) => [...filterArgs, ...share(p)]),
        );
        countKernelCall('winograd4_filter', parts);
      } else kernels.run('winograd_filter', [filterArgs]);
      withZeros(backend, kernels, Math.max(g.Ci, g.Co), (zeros) => {
        withHeapBuffer(backend, threads * scratch, (at) => {
          const targets = Array.from({ length: threads }, (_, t) => at + 4 * t * scratch);
          const args = [
            heapOffset(backend, out),
            heapOffset(backend, x),
            U,
            ...(m === 4 ? [] : [zeros]),
            bias ? heapOffset(backend, bias) : zeros,
            ...epilogueArgs(backend, epilogue),
            ...winogradArgs(g, R),
          ];
          runRowKernel(kernels, m === 4 ? 'winograd4_conv' : 'winograd_conv', targets, args, units);
        });
      });
    });
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/** y = conv(x, filter) (+ bias, [Cout]), then `epilogue`: [N, Ho, Wo, Cout]. */
export function conv2dWithKernel(
  backend: WasmHeapBackend,
  x: Info,
  filter: Info,
  s: ConvShape,
  bias: Info | null = null,
  epilogue: ConvEpilogue = NO_EPILOGUE,
): Info | null {
  const operands = [
    x,
    filter,
    ...(bias ? [bias] : []),
    ...(epilogue.residual ? [epilogue.residual] : []),
  ];
  const kernels = float32(...operands) ? wasmKernelPool(backend) : null;
  if (!kernels) return null;
  if (winogradFits(s, s.inC, s.outC))
    return winogradConv(backend, kernels, x, filter, false, forwardShape(s), bias, epilogue);
  const taps = s.kh * s.kw * s.inC;
  // 8- and 4-wide output-channel slices; channels past the last multiple of 4 read the filter.
  const pack = { kernel: 'pack_filter', args: [taps, s.outC], floats: taps * (s.outC & ~3) };
  return packedConv(
    backend,
    kernels,
    'conv2d',
    pack,
    [x, filter],
    filter,
    s,
    [s.batch, s.outH, s.outW, s.outC],
    Math.max(s.inC, s.outC),
    bias,
    epilogue,
  );
}

/** dx, [N, H, W, Cin]. */
export function backpropInputWithKernel(
  backend: WasmHeapBackend,
  dy: Info,
  filter: Info,
  s: ConvShape,
): Info | null {
  const kernels = float32(dy, filter) ? wasmKernelPool(backend) : null;
  if (!kernels) return null;
  if (winogradFits(s, s.outC, s.inC)) {
    // dx is the correlation of dy with the flipped, transposed filter, padded by 2 - the forward's.
    const g = {
      N: s.batch,
      H: s.outH,
      W: s.outW,
      Ci: s.outC,
      Ho: s.inH,
      Wo: s.inW,
      Co: s.inC,
      top: 2 - s.top,
      left: 2 - s.left,
    };
    return winogradConv(backend, kernels, dy, filter, true, g);
  }
  // Channels in 8-wide slices; the last slice 8 wide if more than 4 remain for it, else 4.
  const rest = s.inC % 8;
  const paddedC = s.inC - rest + (rest === 0 ? 0 : rest > 4 ? 8 : 4);
  const pack = {
    kernel: 'pack_filter_t',
    args: [s.kh, s.kw, s.inC, s.outC],
    floats: s.kh * s.kw * s.outC * paddedC,
  };
  return packedConv(
    backend,
    kernels,
    'conv2d_backprop_input',
    pack,
    [dy],
    filter,
    s,
    [s.batch, s.inH, s.inW, s.inC],
    s.outC,
  );
}

/**
 * dW of a 3x3 stride-1 conv by Winograd F(m x m, 3x3) transposed, m = winogradTile(): the
 * transformed products are summed per chunk of tiles (fixed by the shape), the chunks' sums added
 * in order, and one last transform gives the 3x3 filter.
 */
function winogradFilterGrad(
  backend: WasmHeapBackend,
  kernels: WasmKernelPool,
  x: Info,
  dy: Info,
  g: WinogradShape,
): Info {
  const m = winogradTile();
  const X = (m + 2) ** 2;
  const sums = X * g.Ci * g.Co;
  const { R, tiles, units, macs, chunks } = chunkedUnits(g, m, sums);
  // floats per thread: V and D, and for F(4x4) a border block
  const scratch = X * (tiles * (g.Ci + g.Co) + 32) + (m === 4 ? X * g.Ci + 16 * g.Co : 0);
  const out = backend.makeOutput([3, 3, g.Ci, g.Co], 'float32');
  try {
    withZeros(backend, kernels, Math.max(g.Ci, g.Co), (zeros) => {
      withHeapBuffer(backend, sums, (at) => {
        const args = [
          heapOffset(backend, x),
          heapOffset(backend, dy),
          ...(m === 4 ? [] : [zeros]),
          ...winogradArgs(g, R),
        ];
        // One chunk (a wide layer at a small batch: ResNet-18's 512-channel convs at b64) kept
        // one thread busy; its 36 matrices' sums are independent, so threads share them instead,
        // each transforming every tile (a few % of the work) and summing its own matrices.
        const parts = m === 4 && chunks.count === 1 ? threadsFor(kernels, macs, X) : 1;
        if (parts > 1) {
          withHeapBuffer(backend, parts * scratch, (own) => {
            const share = (p: number) => [
              Math.floor((p * X) / parts),
              Math.floor(((p + 1) * X) / parts),
            ];
            kernels.run(
              'winograd4_filter_grad',
              Array.from({ length: parts }, (_, p) => [
                at,
                own + 4 * p * scratch,
                ...args,
                ...share(p),
                0,
                units,
              ]),
            );
          });
          countKernelCall('winograd4_filter_grad', parts);
        } else
          runChunkedSum(
            backend,
            kernels,
            m === 4 ? 'winograd4_filter_grad' : 'winograd_filter_grad',
            {
              out: at,
              floats: sums,
              args: m === 4 ? [...args, 0, X] : args,
              rows: units,
              chunks,
              threads: threadsFor(kernels, macs, chunks.count),
              scratch,
            },
          );
        kernels.run(m === 4 ? 'winograd4_filter_grad_out' : 'winograd_filter_grad_out', [
          [heapOffset(backend, out), at, g.Ci, g.Co],
        ]);
      });
    });
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/**
 * dW's units and chunks: the chunks (sumChunks) over units of baseTileRows, whose boundaries decide
 * the bits, then units widened (widenFilterGrad) by a factor that divides the chunks' units, so that
 * the chunks hold the same tiles.
 */
function chunkedUnits(g: WinogradShape, m: 2 | 4, sums: number) {
  const base = winogradUnits(g, m);
  const chunks = sumChunks(base.units, base.macs, sums);
  let widen = m === 4 ? widenFilterGrad(g) : 1;
  while (chunks.rows % widen !== 0) widen /= 2;
  return {
    ...winogradUnits(g, m, widen),
    chunks: { count: chunks.count, rows: chunks.rows / widen },
  };
}

// Floats of packed x and dy per block of the direct filter gradient (512 KiB: L2 a core here).
// Fewer blocks a chunk, fewer passes over its sums: single thread, against 64K floats, ResNet-18's
// 3x3/2 256->512 dW at b64 (one block a chunk instead of two) ran 1.12-1.16x, 128->256 1.03x; 192K
// and 256K the same as 128K.
const FILTER_GRAD_BLOCK_FLOATS = 128 * 1024;

// Below this many input channels the direct filter gradient reads x and dy in place: packing them
// cost more than it saved (single thread, CPU time: 3 channels 0.4-0.8x, 16 channels 1.0x, 32 and
// more 1.2-1.9x).
const FILTER_GRAD_PACK_FROM = 32;

/**
 * The direct filter gradient's blocks (conv2d_filter_grad.c): at most `rows` output rows a block,
 * whose packed x and dy take `scratch` floats; rows 0 for x and dy read in place. Blocks do not
 * change the sums' order: no bit depends on them.
 */
export function filterGradBlock(
  s: ConvShape,
  chunkRows: number,
): { rows: number; scratch: number } {
  if (s.inC < FILTER_GRAD_PACK_FROM) return { rows: 0, scratch: 1 };
  const perPosition = Math.ceil(s.inC / 4) * 4 + (s.outC & ~3);
  const rows = Math.max(
    1,
    Math.min(chunkRows, Math.floor(FILTER_GRAD_BLOCK_FLOATS / (s.outW * perPosition))),
  );
  return { rows, scratch: Math.max(1, rows * s.outW * perPosition) };
}

/** dW, [kh, kw, Cin, Cout]: summed per chunk of rows (fixed by the shape), chunks added in order. */
export function filterGradWithKernel(
  backend: WasmHeapBackend,
  x: Info,
  dy: Info,
  s: ConvShape,
): Info | null {
  const kernels = float32(x, dy) ? wasmKernelPool(backend) : null;
  if (!kernels) return null;
  if (winogradFits(s, s.inC, s.outC))
    return winogradFilterGrad(backend, kernels, x, dy, forwardShape(s));
  const size = s.kh * s.kw * s.inC * s.outC;
  const rows = s.batch * s.outH;
  const chunks = sumChunks(rows, macs(s), size);
  const block = filterGradBlock(s, chunks.rows);
  const out = backend.makeOutput([s.kh, s.kw, s.inC, s.outC], 'float32');
  try {
    runChunkedSum(backend, kernels, 'conv2d_filter_grad', {
      out: heapOffset(backend, out),
      floats: size,
      args: [heapOffset(backend, x), heapOffset(backend, dy), ...convShapeArgs(s), block.rows],
      rows,
      chunks,
      threads: threadsFor(kernels, macs(s), chunks.count),
      scratch: block.scratch,
    });
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  }
  return out;
}
