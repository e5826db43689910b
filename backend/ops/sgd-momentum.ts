/**
 * One SGD-with-momentum step for one variable in one pass over its data.
 *
 * As tfjs ops the step is five or six kernels per variable (the weight decay's multiply and add,
 * the momentum's multiply and add, the step's multiply and subtract), each a pass over the
 * weights and a tfjs call: ~300 calls for ResNet-20's 65 variables, and for ResNet-18's 11 M
 * weights as many full passes over memory. Here: our SIMD kernel on wasm (kernels/elementwise.c),
 * a JS loop on the cpu backend's arrays or on the wasm heap where our kernels cannot run, tf ops
 * elsewhere — the same values everywhere, bit for bit, since each operation is rounded to float32
 * as the ops round it (test/train/sgd-momentum.test.ts).
 */
import tf from '#tfjs';
import { hostMemory } from '../wasm/host-memory.js';
import {
  type WasmHeapBackend,
  heapOffset,
  runRowKernel,
  threadsFor,
  wasmKernelPool,
} from '../wasm/wasm-kernels.js';

export interface SgdMomentumStep {
  lr: number;
  momentum: number;
  /** L2 weight decay added to the gradient; 0 for none (the gradient is then used as it is). */
  weightDecay: number;
}

const ROW = 4096; // floats per row of the C kernel (ROW in kernels/elementwise.c)
// Memory-bound: a second thread pays off only on large variables.
const MIN_FLOATS_PER_THREAD = 1 << 18;

const f = Math.fround;
/** A float32's bits as an i32: how a float reaches a kernel through the pool's i32 arguments. */
const bitsOf = (x: number): number => new Int32Array(Float32Array.of(x).buffer)[0];

/** The step with tfjs ops: the reference, and what backends without host memory run. */
export function sgdMomentumWithOps(
  w: tf.Tensor,
  g: tf.Tensor,
  v: tf.Tensor,
  { lr, momentum, weightDecay }: SgdMomentumStep,
): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const gd = weightDecay !== 0 ? g.add(w.mul(weightDecay)) : g;
    const vNew = v.mul(momentum).add(gd);
    return [w.sub(vNew.mul(lr)), vNew];
  });
}

/** The step as a loop over float32 arrays, each operation rounded as a float32 op rounds it. */
function sgdMomentumLoop(
  wOut: Float32Array,
  vOut: Float32Array,
  w: Float32Array,
  g: Float32Array,
  v: Float32Array,
  step: SgdMomentumStep,
): void {
  const [lr, momentum, wd] = [f(step.lr), f(step.momentum), f(step.weightDecay)];
  const decay = step.weightDecay !== 0;
  for (let i = 0; i < w.length; i++) {
    const gi = decay ? f(g[i] + f(w[i] * wd)) : g[i];
    const vi = f(f(v[i] * momentum) + gi);
    vOut[i] = vi;
    wOut[i] = f(w[i] - f(vi * lr));
  }
}

/**
 * w' = w − lr·v' with v' = momentum·v + g + weightDecay·w (PyTorch's SGD), as two new tensors
 * [w', v']; the inputs are left as they are.
 */
export function sgdMomentum(
  w: tf.Tensor,
  g: tf.Tensor,
  v: tf.Tensor,
  step: SgdMomentumStep,
): [tf.Tensor, tf.Tensor] {
  const mem = [w, g, v].every((t) => t.dtype === 'float32') ? hostMemory() : null;
  if (!mem) return sgdMomentumWithOps(w, g, v, step);
  if (!tf.util.arraysEqual(g.shape, w.shape) || !tf.util.arraysEqual(v.shape, w.shape))
    throw new Error(`sgd step: shapes ${g.shape}, ${v.shape} differ from the weight's ${w.shape}`);
  const wOut = mem.alloc(w.shape);
  const vOut = mem.alloc(w.shape);
  const b = tf.backend() as unknown as WasmHeapBackend;
  const kernels = tf.getBackend() === 'wasm' ? wasmKernelPool(b) : null;
  if (kernels && w.size > 0) {
    const rows = Math.ceil(w.size / ROW);
    const threads = threadsFor(kernels, w.size, rows, MIN_FLOATS_PER_THREAD);
    const at = (t: tf.Tensor) => heapOffset(b, t);
    const { lr, momentum, weightDecay } = step;
    try {
      runRowKernel(
        kernels,
        'sgd_momentum',
        new Array<number>(threads).fill(at(wOut)),
        [
          at(vOut),
          at(w),
          at(g),
          at(v),
          bitsOf(lr),
          bitsOf(momentum),
          bitsOf(weightDecay),
          weightDecay !== 0 ? 1 : 0,
          w.size,
        ],
        rows,
      );
    } catch (e) {
      tf.dispose([wOut, vOut]);
      throw e;
    }
  } else {
    sgdMomentumLoop(mem.view(wOut), mem.view(vOut), mem.view(w), mem.view(g), mem.view(v), step);
  }
  return [wOut, vOut];
}
