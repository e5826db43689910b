/**
 * Identity and same-dtype Cast on wasm without copying.
 *
 * The gradient tape saves every tensor a backward pass needs through `clone`, i.e. the Identity
 * kernel, and differentiates the clone with a Cast to float32. Stock wasm copies the data for both
 * — about 400 full-size copies per ResNet-20 train step. Tensors are immutable, so, as the cpu
 * backend does, these return the same data with one more reference; a Cast that changes the dtype
 * still converts (stock kernel).
 */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { replaceWasmKernel } from './wasm-replace-kernel.js';

type Backend = { incRef(dataId: object): void };

function share(x: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  (backend as Backend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let stockCast: tf.KernelFunc | undefined;
let stockIdentity: tf.KernelFunc | undefined;

function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  return x.dtype === 'string'
    ? (stockIdentity!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo)
    : share(x, args.backend);
}

function cast(args: {
  inputs: tf.NamedTensorInfoMap;
  attrs?: tf.NamedAttrMap;
  backend: unknown;
}): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { dtype } = args.attrs as { dtype: tf.DataType };
  return dtype === x.dtype
    ? share(x, args.backend)
    : (stockCast!(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo);
}

/** Registers the sharing Identity and Cast for wasm (idempotent). */
export function registerWasmIdentity(): void {
  stockIdentity = replaceWasmKernel('Identity', identity as tf.KernelFunc) ?? stockIdentity;
  stockCast = replaceWasmKernel('Cast', cast as tf.KernelFunc) ?? stockCast;
}
