/**
 * Direct access to tensor data held in JavaScript-visible memory (the wasm heap, the cpu backend's
 * typed arrays), for the few kernels we write as plain loops. Backends whose memory JS cannot see
 * (tfjs-node's native tensors, WebGL textures) get `null` and the caller composes tf ops instead.
 */
import tf from '#tfjs';

type Data = { dataId: object; shape: number[] };

export interface HostMemory {
  /** A float32 view of the data, without copying. Take views only after every `alloc`. */
  view(t: Data): Float32Array;
  /** A new, uninitialised float32 tensor to write into through `view`. */
  alloc(shape: number[]): tf.Tensor;
}

export interface WasmBackendLike {
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory };
}

interface CpuBackendLike {
  data: { get(id: unknown): { values: Float32Array } };
}

const size = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/** The wasm heap as it is now: the threaded build's HEAPU8 can lag behind a heap that just grew. */
export const wasmHeap = (b: WasmBackendLike): ArrayBuffer =>
  (b.wasm.wasmMemory ?? b.wasm.HEAPU8).buffer as ArrayBuffer;

const wasmMemory = (b: WasmBackendLike): HostMemory => ({
  view: (t) => new Float32Array(wasmHeap(b), b.dataIdMap.get(t.dataId).memoryOffset, size(t.shape)),
  alloc: (shape) => tf.engine().makeTensorFromTensorInfo(b.makeOutput(shape, 'float32')),
});

const cpuMemory = (b: CpuBackendLike): HostMemory => ({
  view: (t) => b.data.get(t.dataId).values,
  // The cpu backend keeps the array it is given, so writes through the view land in the tensor.
  alloc: (shape) => tf.tensor(new Float32Array(size(shape)), shape),
});

/** The current backend's host memory, or null where tensor data is not in JS-visible memory. */
export function hostMemory(): HostMemory | null {
  const name = tf.getBackend();
  if (name === 'wasm') return wasmMemory(tf.backend() as unknown as WasmBackendLike);
  if (name === 'cpu') return cpuMemory(tf.backend() as unknown as CpuBackendLike);
  return null;
}
