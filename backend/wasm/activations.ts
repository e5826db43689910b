/**
 * ReLU6 and the sigmoid (MobileNet's and EfficientNet's swish activations) on our wasm kernels
 * (backend/kernels/elementwise.c), as relu.ts does for ReLU:
 * - Relu6 forward: tfjs's wasm Relu6 is a scalar loop on one thread; ours is SIMD and threaded, with
 *   the cpu backend's values (NaN stays NaN, -0 becomes +0).
 * - Relu6 gradient: tfjs's is dy · LessEqual(x, 6) · Step(x), five kernels (two broadcasting
 *   compares, the slowest); ours computes the same values, NaN included, in one pass.
 * - Sigmoid gradient: tfjs's dy · (y · (1 − y)), three kernels; ours the same operations in one pass.
 * Other backends, dtypes, and wasm without our kernels keep tfjs's kernels and formulas.
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { type WasmHeapBackend, wasmKernelPool } from './wasm-kernels.js';
import { elementwise, replaceWithElementwise } from './wasm-elementwise.js';

const RELU6_GRAD = 'RobustRelu6Grad';
const SIGMOID_GRAD = 'RobustSigmoidGrad';

/**
 * A wasm kernel computing `kernel(dy, t)` in one pass; null from `ready` where ours cannot run
 * (then the gradient uses tfjs's formula instead of calling this kernel).
 */
function gradKernel(kernel: string) {
  return ({
    inputs,
    backend,
  }: {
    inputs: tf.NamedTensorInfoMap;
    backend: unknown;
  }): tf.TensorInfo => {
    const { dy, t } = inputs as { dy: tf.TensorInfo; t: tf.TensorInfo };
    const b = backend as WasmHeapBackend;
    const kernels = wasmKernelPool(b);
    if (!kernels)
      throw new Error(
        `${kernel}: our wasm kernels are off (the gradient uses tfjs's formula then)`,
      );
    return elementwise(b, kernels, kernel, t.shape, [dy, t]);
  };
}

/** Whether the one-pass kernel `name` can run here on these tensors. */
function canRun(name: string, ...ts: tf.Tensor[]): boolean {
  if (!tf.getKernel(name, tf.getBackend()) || ts.some((t) => t.dtype !== 'float32')) return false;
  return wasmKernelPool(tf.backend() as unknown as WasmHeapBackend) !== null;
}

/** Registers our Relu6 and the one-pass gradient kernels for wasm (idempotent). */
export function registerWasmActivations(): void {
  replaceWithElementwise('Relu6', 'relu6');
  for (const [name, kernel] of [
    [RELU6_GRAD, 'relu6_grad'],
    [SIGMOID_GRAD, 'sigmoid_grad'],
  ]) {
    if (!tf.getKernel(name, 'wasm'))
      tf.registerKernel({
        kernelName: name,
        backendName: 'wasm',
        kernelFunc: gradKernel(kernel) as tf.KernelFunc,
      });
  }
}

/** Relu6's and Sigmoid's gradients for every backend: our kernels where they run, else tfjs's formulas. */
export function registerActivationGradients(): void {
  tf.registerGradient({
    kernelName: 'Relu6',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      const g = dy as tf.Tensor;
      return {
        x: () =>
          canRun(RELU6_GRAD, g, x)
            ? (tf.engine().runKernel(RELU6_GRAD, { dy: g, t: x }) as tf.Tensor)
            : tf.mul(g, tf.cast(tf.mul(tf.lessEqual(x, 6), tf.step(x)), 'float32')),
      };
    },
  });
  tf.registerGradient({
    kernelName: 'Sigmoid',
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [y] = saved;
      const g = dy as tf.Tensor;
      return {
        x: () =>
          canRun(SIGMOID_GRAD, g, y)
            ? (tf.engine().runKernel(SIGMOID_GRAD, { dy: g, t: y }) as tf.Tensor)
            : tf.mul(g, tf.mul(y, tf.sub(tf.scalar(1), y))),
      };
    },
  });
}
