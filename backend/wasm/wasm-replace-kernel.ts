/** Putting our kernel in the place of a stock wasm kernel, which stays at hand for the cases ours leaves. */
import tf from '#tfjs';
import '@tensorflow/tfjs-backend-wasm';

/**
 * Registers `kernelFunc` as wasm kernel `name`, keeping the stock set-up (it binds the wasm function
 * the stock kernel calls). Returns the stock kernel, or undefined if ours is already in place.
 */
export function replaceWasmKernel(
  name: string,
  kernelFunc: tf.KernelFunc,
): tf.KernelFunc | undefined {
  const existing = tf.getKernel(name, 'wasm');
  if (!existing) throw new Error(`wasm kernel ${name} is not registered`);
  if (existing.kernelFunc === kernelFunc) return undefined;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...existing, kernelFunc });
  return existing.kernelFunc;
}
