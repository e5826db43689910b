/**
 * Our wasm SIMD kernels (backend/kernels/*.c) as one pool on the current tfjs wasm heap.
 *
 * Each kernel call writes a range of rows of its output, so a call's rows are handed to the threads
 * in chunks. Calls and threads are counted so tests can tell the kernels really ran.
 */
import tf from '#tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { WasmKernelPool } from './wasm-kernel-pool.js';
import {
  plainWasm,
  relaxedPlainWasm,
  relaxedSharedWasm,
  sharedWasm,
} from './kernels/kernels.wasm.js';
import { relaxedMadd } from './relaxed-simd.js';
import { envVar, fromBase64 } from '../../util/platform.js';

export interface WasmHeapBackend {
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: unknown, force?: boolean): boolean;
  wasm: {
    HEAPU8: Uint8Array;
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
  };
}

/** Shape of a convolution, NHWC, as the kernels take it. */
export interface ConvShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
}

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
const MIN_MACS_PER_THREAD = 2_000_000;
// Sums over rows (filter gradients, batch-norm statistics) are cut into at most this many chunks,
// each at least MIN_MACS_PER_THREAD of work: enough for 2, 3 or 4 threads to share the load evenly,
// also when one of them starts late; decided by the shape alone (see sumChunks).
const MAX_CHUNKS = 12;
// Work per chunk at least this many times its partial sum's floats: zeroing and adding a chunk's
// partial sum (a 512×512×3×3 dW is 2.4M floats) stays a few percent of the chunk's arithmetic.
const WORK_PER_PARTIAL_FLOAT = 64;
// Partial sums of one pass at most this many bytes (more chunks run in further passes), or one
// per thread if that is more: about what one partial per thread took before.
const SLOT_BYTES = 32 << 20;

let pool: WasmKernelPool | null = null;
let poolMemory: WebAssembly.Memory | null = null;
// The environment's choices; a value not listed here is refused by initBackend (kernelEnvProblem).
const KERNELS_ENV: Record<string, boolean> = { '1': true, '0': false };
const WINOGRAD_ENV: Record<string, { on: boolean; tile: 2 | 4 }> = {
  '4': { on: true, tile: 4 }, // F(4x4, 3x3), the default
  '2': { on: true, tile: 2 }, // F(2x2, 3x3)
  '0': { on: false, tile: 4 }, // direct kernels only
};
// 1: the relaxed-SIMD build where the engine runs it with a fused multiply-add (relaxed-simd.ts),
// else the plain SIMD one; 0: the plain SIMD build (the numbers of the kernels before FMA).
const RELAXED_ENV: Record<string, boolean> = { '1': true, '0': false };
/** An environment variable's value, or undefined when unset or empty. */
const setting = (name: string) => envVar(name) || undefined;
const kernelsEnv = setting('ROBUST_WASM_KERNELS');
const winogradEnv = setting('ROBUST_WINOGRAD');
const relaxedEnv = setting('ROBUST_RELAXED_SIMD');
let enabled = KERNELS_ENV[kernelsEnv ?? '1'] ?? true;
let relaxed = RELAXED_ENV[relaxedEnv ?? '1'] ?? true;
// whether the pool runs the relaxed-SIMD (FMA) build
let poolFma = false;
let winograd = (WINOGRAD_ENV[winogradEnv ?? '4'] ?? WINOGRAD_ENV['4']).on;
let tile: 2 | 4 = (WINOGRAD_ENV[winogradEnv ?? '4'] ?? WINOGRAD_ENV['4']).tile;
let broken = false;
let threadsOverride: number | null = null;
const calls = new Map<string, number>();
const lastThreads = new Map<string, number>();

/** The pool on this backend's heap, or null where the kernels cannot run (off, no SIMD, heap hidden). */
export function wasmKernelPool(backend: WasmHeapBackend): WasmKernelPool | null {
  if (!enabled || broken) return null;
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!memory) return null;
  if (pool && poolMemory === memory) return pool;
  pool?.dispose();
  try {
    // An unfused relaxed_madd is the plain build's multiply and add, so only a fused one is worth a
    // variant of its own.
    const fma = relaxed && relaxedMadd() === 'fused';
    pool = new WasmKernelPool(
      memory,
      fromBase64(fma ? relaxedPlainWasm : plainWasm),
      fromBase64(fma ? relaxedSharedWasm : sharedWasm),
      threadsOverride ?? getThreadsCount(),
    );
    poolFma = fma;
    poolMemory = memory;
  } catch {
    // No wasm SIMD or no worker threads here: tfjs's own kernels still work, so they are used.
    broken = true;
    pool = null;
  }
  return pool;
}

/**
 * Starts the pool on `backend`'s heap ahead of the first kernel and waits until its threads run:
 * in a browser a Web Worker starts only once its creator yields, so a kernel waiting on a thread
 * that has not started would wait for good. Returns the threads our kernels run on (1: the
 * calling thread alone; 0: our kernels are off or cannot run here).
 */
export async function startWasmKernelPool(backend: WasmHeapBackend): Promise<number> {
  const p = wasmKernelPool(backend);
  if (!p) return 0;
  try {
    await p.ready();
    return p.threads;
  } catch {
    useKernelThreads(1); // a thread that cannot start: the kernels on the calling thread alone
    return wasmKernelPool(backend)?.threads ?? 0;
  }
}

/** Turns our kernels on or off (off: tfjs's XNNPACK kernels); for benchmarks and tests. */
export function useWasmKernels(on: boolean): void {
  enabled = on;
  if (!on) {
    pool?.dispose();
    pool = null;
    poolMemory = null;
  }
}

/**
 * Runs the relaxed-SIMD build of our kernels (FMA) where the engine fuses its multiply-add, or the
 * plain SIMD build (off), from the next call on; for benchmarks and tests. ROBUST_RELAXED_SIMD=0
 * starts with it off.
 */
export function useRelaxedSimd(on: boolean): void {
  relaxed = on;
  pool?.dispose();
  pool = null;
  poolMemory = null;
}

/** Whether the pool that runs now (wasmKernelPool) is the relaxed-SIMD build, with fused multiply-adds. */
export const kernelsFma = (): boolean => pool !== null && poolFma;

/**
 * Runs our kernels on `threads` threads from the next call on (null: as many as tfjs's XNNPACK
 * has), on a shared (threaded) heap; for tests and benchmarks that compare thread counts in one
 * process.
 */
export function useKernelThreads(threads: number | null): void {
  threadsOverride = threads;
  pool?.dispose();
  pool = null;
  poolMemory = null;
}

/**
 * Turns Winograd on or off for 3x3 stride-1 convs and their gradients (off: the direct kernels),
 * and picks its output tile: F(4x4, 3x3) (the default) or F(2x2, 3x3) for the forward conv and
 * input gradient; for benchmarks and tests. ROBUST_WINOGRAD=0 starts with it off, =2 with F(2x2).
 */
export function useWinograd(on: boolean, m: 2 | 4 = tile): void {
  winograd = on;
  tile = m;
}

export const winogradEnabled = (): boolean => winograd;

/**
 * Why ROBUST_WASM_KERNELS, ROBUST_WINOGRAD or ROBUST_RELAXED_SIMD cannot be used (null when they can): a value that
 * changes which kernels compute the numbers is never guessed at.
 */
export function kernelEnvProblem(): string | null {
  const has = (o: object, v: string | undefined) => v === undefined || Object.hasOwn(o, v);
  if (!has(KERNELS_ENV, kernelsEnv))
    return `ROBUST_WASM_KERNELS must be 1 (robust's wasm kernels, the default) or 0 (tfjs's own); got '${kernelsEnv}'`;
  if (!has(WINOGRAD_ENV, winogradEnv))
    return `ROBUST_WINOGRAD must be 4 (Winograd F(4x4, 3x3), the default), 2 (F(2x2, 3x3)) or 0 (direct convs); got '${winogradEnv}'`;
  if (!has(RELAXED_ENV, relaxedEnv))
    return `ROBUST_RELAXED_SIMD must be 1 (fused multiply-adds through wasm relaxed SIMD where the engine has them, the default) or 0 (plain wasm SIMD); got '${relaxedEnv}'`;
  return null;
}

/** The output tile m of Winograd F(m x m, 3x3) the forward and input-gradient convs use. */
export const winogradTile = (): 2 | 4 => tile;

/** How many times any of our kernels has run in this process (0: tfjs's own kernels did all the work). */
export const wasmKernelCalls = (): number => [...calls.values()].reduce((a, b) => a + b, 0);

/** How many times kernel `name` has run in this process, and over how many threads the last time. */
export function wasmKernelStats(name: string): { calls: number; lastThreads: number } {
  return { calls: calls.get(name) ?? 0, lastThreads: lastThreads.get(name) ?? 0 };
}

export const heapOffset = (backend: WasmHeapBackend, t: { dataId: object }): number =>
  backend.dataIdMap.get(t.dataId).memoryOffset;

/** Runs `body` with a temporary heap buffer of `floats` float32s (given its offset); frees it after. */
export function withHeapBuffer<T>(
  backend: WasmHeapBackend,
  floats: number,
  body: (at: number) => T,
): T {
  const buffer = backend.makeOutput([floats], 'float32');
  try {
    return body(heapOffset(backend, buffer));
  } finally {
    backend.disposeData(buffer.dataId);
  }
}

/**
 * Runs row kernel `name(target, ...args, r0, r1)` over `rows` rows, which the threads take in
 * chunks; `targets[t]` is thread t's output (all the same unless the kernel accumulates per thread).
 */
export function runRowKernel(
  kernels: WasmKernelPool,
  name: string,
  targets: number[],
  args: number[],
  rows: number,
): void {
  kernels.runRows(name, targets, args, rows, chunkRows(rows, targets.length));
  countKernelCall(name, targets.length);
}

/** A conv kernel: its operands, then the shape, as the C functions take them. */
export function runConvKernel(
  kernels: WasmKernelPool,
  name: string,
  targets: number[],
  operands: number[],
  s: ConvShape,
  rows: number,
): void {
  runRowKernel(kernels, name, targets, [...operands, ...convShapeArgs(s)], rows);
}

/** A conv's shape as the C functions take it, after their operands. */
export const convShapeArgs = (s: ConvShape): number[] => [
  s.inH,
  s.inW,
  s.inC,
  s.outH,
  s.outW,
  s.outC,
  s.kh,
  s.kw,
  s.sh,
  s.sw,
  s.top,
  s.left,
];

/** Chunks small enough that threads finish together, large enough to keep per-chunk costs low. */
const chunkRows = (rows: number, threads: number): number =>
  threads > 1 ? Math.max(1, Math.ceil(rows / (8 * threads))) : rows;

/** Records a call of kernel `name` over `threads` threads (for wasmKernelStats). */
export function countKernelCall(name: string, threads: number): void {
  calls.set(name, (calls.get(name) ?? 0) + 1);
  lastThreads.set(name, threads);
}

/** Threads worth using for `work` units (multiply-adds by default) over `rows` rows. */
export function threadsFor(
  kernels: WasmKernelPool,
  work: number,
  rows: number,
  minPerThread = MIN_MACS_PER_THREAD,
): number {
  return Math.max(1, Math.min(kernels.threads, rows, Math.floor(work / minPerThread)));
}

/** A sum over rows cut into `count` chunks of `rows` rows (the last may be shorter). */
export interface Chunks {
  count: number;
  rows: number;
}

/**
 * How a sum over `rows` rows is cut into chunks: from the problem's size alone — its `work`,
 * `minWork` at least per chunk, and `partial` floats summed per chunk — and never from the thread
 * count, so that the sum, added up in chunk order, is the same bit for bit on any number of
 * threads and in every run. Chunk boundaries fall on multiples of `align` rows.
 */
export function sumChunks(
  rows: number,
  work: number,
  partial: number,
  minWork = MIN_MACS_PER_THREAD,
  align = 1,
): Chunks {
  const units = Math.ceil(rows / align);
  const count = Math.max(
    1,
    Math.min(
      MAX_CHUNKS,
      units,
      Math.floor(work / minWork),
      Math.floor(work / (WORK_PER_PARTIAL_FLOAT * partial)),
    ),
  );
  const per = align * Math.ceil(units / count);
  return { count: Math.ceil(rows / per), rows: per };
}

/**
 * out (`floats` float32s at heap offset `out`) = the sum over rows [0, rows) that kernel
 * `name(slot, [scratch,] ...args, r0, r1)` writes per chunk (sumChunks), its chunks' partial sums
 * added in chunk order. Threads take the chunks in turn; `scratch` floats per thread are passed
 * after the slot when given. Partial sums take at most SLOT_BYTES (or one per thread) at a time:
 * a sum with more chunks runs in passes, which changes nothing in the result.
 */
export function runChunkedSum(
  backend: WasmHeapBackend,
  kernels: WasmKernelPool,
  name: string,
  job: {
    out: number;
    floats: number;
    args: number[];
    rows: number;
    chunks: Chunks;
    threads: number;
    scratch?: number;
  },
): void {
  const { out, floats, chunks } = job;
  const threads = Math.max(1, Math.min(job.threads, chunks.count));
  const slots = Math.min(chunks.count, Math.max(threads, Math.floor(SLOT_BYTES / (4 * floats))));
  // One chunk writes the result itself; more write slots that are added after each pass.
  const direct = chunks.count === 1;
  const scratch = job.scratch ?? 0;
  withHeapBuffer(backend, Math.max(1, (direct ? 0 : slots * floats) + threads * scratch), (at) => {
    const scratchAt = at + 4 * (direct ? 0 : slots * floats);
    const perThread = job.scratch
      ? Array.from({ length: threads }, (_, t) => scratchAt + 4 * t * scratch)
      : undefined;
    for (let first = 0; first < chunks.count; first += slots) {
      const count = Math.min(slots, chunks.count - first);
      kernels.runChunks(
        name,
        { slots: direct ? out : at, stride: 4 * floats, scratch: perThread, threads },
        job.args,
        job.rows,
        chunks.rows,
        first,
        count,
      );
      if (direct) break;
      const blocks = Math.ceil(floats / SUM_BLOCK);
      const adders = threadsFor(kernels, floats * count, blocks, MIN_FLOATS_SUMMED_PER_THREAD);
      kernels.runRows(
        'sum_chunks',
        new Array<number>(adders).fill(out),
        [at, floats, count, floats, first === 0 ? 1 : 0],
        blocks,
        Math.ceil(blocks / adders),
      );
    }
  });
  countKernelCall(name, threads);
}

// sum_chunks' rows: blocks of this many floats (SUM_BLOCK in kernels/common.c).
const SUM_BLOCK = 1024;
// Below this many floats added per thread, a second thread costs more than it saves.
const MIN_FLOATS_SUMMED_PER_THREAD = 1 << 20;
