/**
 * The ReLU gradient as one kernel on wasm. tfjs differentiates Relu as Multiply(dy, Step(x)): two
 * passes over every activation, ~10% of an attack step on a ResNet. Our kernel
 * (backend/kernels/elementwise.c) computes the same values, NaN included, in one pass split across
 * the kernel threads. Other backends (and wasm without our kernels) keep tfjs's formula.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type WasmHeapBackend, heapOffset, runRowKernel, threadsFor, wasmKernelPool } from './wasm-kernels.js';
import { type Backend, KernelRunner } from './wasm-kernel-runner.js';

export const RELU_GRAD = 'RobustReluGrad';
const ROW = 4096; // floats per row of the C kernel
// An elementwise pass is memory-bound: a second thread pays off only on large tensors.
const MIN_FLOATS_PER_THREAD = 1 << 18;

/** dy · step(x) with tfjs's own Step and Multiply kernels. */
function stockReluGrad(dy: tf.TensorInfo, x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const k = new KernelRunner(backend as Backend);
  return k.finish(k.run('Multiply', { a: dy, b: k.run('Step', { x }, { alpha: 0 }) }));
}

function reluGradKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const b = backend as WasmHeapBackend;
  const kernels = dy.dtype === 'float32' && x.dtype === 'float32' ? wasmKernelPool(b) : null;
  if (!kernels) return stockReluGrad(dy, x, backend);
  const count = tf.util.sizeFromShape(x.shape);
  const rows = Math.ceil(count / ROW);
  const out = b.makeOutput(x.shape, 'float32');
  const threads = threadsFor(kernels, count, rows, MIN_FLOATS_PER_THREAD);
  try {
    runRowKernel(kernels, 'relu_grad', new Array<number>(threads).fill(heapOffset(b, out)), [heapOffset(b, dy), heapOffset(b, x), count], rows);
  } catch (e) {
    b.disposeData(out.dataId);
    throw e;
  }
  return out;
}

/** Registers the one-pass ReLU gradient kernel for wasm (idempotent). */
export function registerWasmReluGrad(): void {
  if (tf.getKernel(RELU_GRAD, 'wasm')) return;
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: reluGradKernel as tf.KernelFunc });
}

/** Relu's gradient for every backend: our kernel where the backend has it, else dy · step(x). */
export function registerReluGradient(): void {
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      const g = dy as tf.Tensor;
      return {
        x: () =>
          tf.getKernel(RELU_GRAD, tf.getBackend()) && x.dtype === 'float32'
            ? (tf.engine().runKernel(RELU_GRAD, { dy: g, x }) as tf.Tensor)
            : tf.mul(g, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
}
