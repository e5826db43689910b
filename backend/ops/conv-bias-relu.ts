/**
 * relu(conv2d(x, filter) + bias [+ residual]) as one op: a BN-folded ResNet's conv–ReLU and its
 * block end conv–Add–ReLU. On wasm our conv kernels add the residual and apply the ReLU while the
 * output tile is still in cache (no pass over the activation for the Add, none for the ReLU); the
 * values are those of the separate ops, bit for bit. Elsewhere it runs conv2dBias, Add and Relu.
 *
 * The gradient is ReLU's mask applied once (dz = dy · step(y), as Relu's own gradient computes
 * it; y > 0 exactly where the pre-activation is), then conv2dBias's lazy gradients of dz, and dz
 * itself for the residual — so an input gradient still computes no filter gradient.
 */
import tf from '#tfjs';
import { conv2dBias, convBiasGradients, type Conv2DBiasAttrs } from './conv-bias.js';

export const CONV2D_BIAS_RELU = 'RobustConv2DBiasRelu';
/** The one-pass ReLU gradient kernel (backend/wasm/relu.ts) where the backend has it. */
const RELU_GRAD = 'RobustReluGrad';

/** dy · step(y): 1 where y > 0, NaN where y is NaN, else 0 — Relu's gradient (backend/wasm/relu.ts). */
function reluMask(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.getKernel(RELU_GRAD, tf.getBackend())
    ? (tf.engine().runKernel(RELU_GRAD, { dy, x: y }) as tf.Tensor)
    : tf.mul(dy, tf.cast(tf.step(y), 'float32'));
}

let gradientRegistered = false;

function registerGradient(): void {
  if (gradientRegistered) return;
  tf.registerGradient({
    kernelName: CONV2D_BIAS_RELU,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, y] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as Conv2DBiasAttrs;
      // Every input's gradient reads dz; the tape disposes it with the other gradients.
      const dz = reluMask(dy as tf.Tensor, y) as tf.Tensor4D;
      return { ...convBiasGradients(x, filter, dz, a), residual: () => dz.clone() };
    },
  });
  gradientRegistered = true;
}

/**
 * relu(conv2d(x, filter, strides, pad) + bias + residual) (NHWC, no dilation); `residual` null
 * for none, else of the output's shape.
 */
export function conv2dBiasRelu(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
  residual: tf.Tensor4D | null,
  strides: [number, number],
  pad: 'same' | 'valid',
): tf.Tensor4D {
  if (!tf.getKernel(CONV2D_BIAS_RELU, tf.getBackend())) {
    const y = conv2dBias(x, filter, bias, strides, pad);
    return tf.relu(residual ? tf.add(y, residual) : y) as tf.Tensor4D;
  }
  registerGradient();
  const attrs: Conv2DBiasAttrs = { strides, pad };
  const inputs: tf.NamedTensorMap = residual ? { x, filter, bias, residual } : { x, filter, bias };
  return tf
    .engine()
    .runKernel(CONV2D_BIAS_RELU, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
