/**
 * Direct access to tensor data held in JavaScript-visible memory (the wasm heap, the cpu backend's
 * typed arrays), for the few fused kernels we write in plain loops. Backends whose memory JS
 * cannot see (tfjs-node's native tensors, WebGL textures) get `null` and the caller composes
 * tf ops instead.
 */
import * as tf from '@tensorflow/tfjs';

export interface HostMemory {
  /** A float32 view of `t`'s data, without copying. Take views only after every `alloc`. */
  view(t: tf.Tensor): Float32Array;
  /** A new, uninitialised float32 tensor to write into through `view`. */
  alloc(shape: number[]): tf.Tensor;
}

interface WasmBackendLike {
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory };
}

interface CpuBackendLike {
  data: { get(id: unknown): { values: Float32Array } };
}

const wasmMemory = (b: WasmBackendLike): HostMemory => ({
  // The threaded build's HEAPU8 can lag behind a heap that just grew; the memory object cannot.
  view: (t) => new Float32Array((b.wasm.wasmMemory ?? b.wasm.HEAPU8).buffer, b.dataIdMap.get(t.dataId).memoryOffset, t.size),
  alloc: (shape) => tf.engine().makeTensorFromTensorInfo(b.makeOutput(shape, 'float32')),
});

const cpuMemory = (b: CpuBackendLike): HostMemory => ({
  view: (t) => b.data.get(t.dataId).values,
  // The cpu backend keeps the array it is given, so writes through the view land in the tensor.
  alloc: (shape) => tf.tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)), shape),
});

/** The current backend's host memory, or null where tensor data is not in JS-visible memory. */
export function hostMemory(): HostMemory | null {
  const name = tf.getBackend();
  if (name === 'wasm') return wasmMemory(tf.backend() as unknown as WasmBackendLike);
  if (name === 'cpu') return cpuMemory(tf.backend() as unknown as CpuBackendLike);
  return null;
}
