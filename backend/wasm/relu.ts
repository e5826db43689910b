/**
 * ReLU and its gradient as our own wasm kernels (backend/kernels/elementwise.c).
 *
 * - Forward: tfjs's wasm Relu is a generic scalar loop on one thread — a third of a BN-folded
 *   ResNet-20 forward pass. Ours is SIMD, split across the kernel threads, with the cpu backend's
 *   values (NaN stays NaN, -0 becomes +0).
 * - Gradient: tfjs differentiates Relu as Multiply(dy, Step(x)), two passes over every activation,
 *   ~10% of an attack step. Ours computes the same values, NaN included, in one pass.
 * Other backends, other dtypes and wasm without our kernels keep tfjs's kernels and formula.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type WasmHeapBackend, wasmKernelPool } from './wasm-kernels.js';
import { elementwise, replaceWithElementwise } from './wasm-elementwise.js';
import { type Backend, KernelRunner } from './wasm-kernel-runner.js';

const RELU_GRAD = 'RobustReluGrad';

/** dy · step(x) with tfjs's own Step and Multiply kernels. */
function stockReluGrad(dy: tf.TensorInfo, x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const k = new KernelRunner(backend as Backend);
  return k.finish(k.run('Multiply', { a: dy, b: k.run('Step', { x }, { alpha: 0 }) }));
}

function reluGradKernel({
  inputs,
  backend,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}): tf.TensorInfo {
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const b = backend as WasmHeapBackend;
  const kernels = dy.dtype === 'float32' && x.dtype === 'float32' ? wasmKernelPool(b) : null;
  if (!kernels) return stockReluGrad(dy, x, backend);
  return elementwise(b, kernels, 'relu_grad', x.shape, [dy, x]);
}

/** Registers our Relu and the one-pass ReLU gradient kernel for wasm (idempotent). */
export function registerWasmRelu(): void {
  replaceWithElementwise('Relu', 'relu');
  if (tf.getKernel(RELU_GRAD, 'wasm')) return;
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'wasm',
    kernelFunc: reluGradKernel as tf.KernelFunc,
  });
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
