/**
 * The conv filter gradient (Conv2DBackpropFilter) on tfjs's wasm heap with our SIMD kernel
 * (backend/kernels/conv2d_filter_grad.c), split by output rows across threads.
 *
 * Why not XNNPACK: dW as an XNNPACK forward conv makes the activations the "filter", and XNNPACK
 * transposes and repacks a filter when it creates the operator — an activation-sized copy on every
 * call, about as long as the convolution itself. The kernel reads x and dy where they lie.
 */
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { WasmKernelPool } from './wasm-kernel-pool.js';
import { plainWasm, sharedWasm } from './kernels/conv2d-filter-grad.wasm.js';

type Info = tf.TensorInfo;

interface WasmBackend {
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  disposeData(dataId: unknown, force?: boolean): boolean;
  wasm: { wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
}

/** What the kernel needs to know about the convolution (tfjs's conv info, NHWC). */
export interface FilterGradGeometry {
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

// Below this many multiply-adds a second thread costs more (wake-up, a partial sum) than it saves.
const MIN_MACS_PER_THREAD = 2_000_000;

let pool: WasmKernelPool | null = null;
let poolMemory: WebAssembly.Memory | null = null;
let disabled = process.env.ROBUST_WASM_KERNELS === '0';
let calls = 0;
let lastThreads = 0;

/** How many filter gradients our kernel has computed in this process (tests check it ran). */
export const filterGradKernelCalls = (): number => calls;
/** Threads the last of them was split across. */
export const filterGradKernelLastThreads = (): number => lastThreads;

const decode = (b64: string): Uint8Array<ArrayBuffer> => Uint8Array.from(Buffer.from(b64, 'base64'));

/** The kernel pool on this backend's heap, or null where it cannot run (no SIMD, memory hidden). */
function kernelPool(backend: WasmBackend): WasmKernelPool | null {
  if (disabled) return null;
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!memory) return null;
  if (pool && poolMemory === memory) return pool;
  pool?.dispose();
  try {
    pool = new WasmKernelPool(memory, decode(plainWasm), decode(sharedWasm), getThreadsCount());
    poolMemory = memory;
  } catch {
    // No wasm SIMD (or no worker threads): the XNNPACK path still works, so use it.
    disabled = true;
    pool = null;
  }
  return pool;
}

/** Turns our kernel on or off (off: the XNNPACK formulation); for benchmarks and tests. */
export function useWasmFilterGradKernel(on: boolean): void {
  disabled = !on;
  if (!on) {
    pool?.dispose();
    pool = null;
    poolMemory = null;
  }
}

/** dW as a new [kh, kw, Cin, Cout] tensor, or null when the kernel is unavailable. */
export function filterGradWithKernel(backend: WasmBackend, x: Info, dy: Info, g: FilterGradGeometry): Info | null {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const kernels = kernelPool(backend);
  if (!kernels) return null;
  const size = g.kh * g.kw * g.inC * g.outC;
  const rows = g.batch * g.outH;
  const macs = rows * g.outW * size;
  const threads = Math.max(1, Math.min(kernels.threads, rows, Math.floor(macs / MIN_MACS_PER_THREAD)));
  const out = backend.makeOutput([g.kh, g.kw, g.inC, g.outC], 'float32');
  // Thread 0 writes the result, the others partial sums added in afterwards.
  const partials = Array.from({ length: threads - 1 }, () => backend.makeOutput([size], 'float32'));
  try {
    const offset = (t: Info) => backend.dataIdMap.get(t.dataId).memoryOffset;
    const targets = [out, ...partials].map(offset);
    const [xp, dyp] = [offset(x), offset(dy)];
    const shares = targets.map((dw, t) => [
      dw, xp, dyp, g.inH, g.inW, g.inC, g.outH, g.outW, g.outC, g.kh, g.kw, g.sh, g.sw, g.top, g.left,
      Math.floor((rows * t) / threads), Math.floor((rows * (t + 1)) / threads),
    ]);
    kernels.run('conv2d_filter_grad', shares);
    for (const p of partials) kernels.run('add_into', [[targets[0], offset(p), size]]);
    calls++;
    lastThreads = threads;
  } catch (e) {
    backend.disposeData(out.dataId);
    throw e;
  } finally {
    for (const p of partials) backend.disposeData(p.dataId);
  }
  return out;
}
