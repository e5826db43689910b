/**
 * conv2d + bias as one op. On wasm our kernels add the bias as they write the output (one pass over
 * the activation fewer per conv: ~20 Adds per BN-folded ResNet-20 pass). Its registered gradient
 * gives dx, dW and the bias gradient separately, so — like tf.conv2d's and unlike tf.fused.conv2d's —
 * an attack's input gradient computes no filter gradient. Other backends run conv2d, then add.
 */
import tf from '#tfjs';

export const CONV2D_BIAS = 'RobustConv2DBias';

export interface Conv2DBiasAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  [key: string]: unknown;
}

/** The gradient attributes of Conv2DBackpropInput/Filter for this conv. */
const gradientAttrs = (a: Conv2DBiasAttrs) => ({
  strides: a.strides,
  pad: a.pad,
  dataFormat: 'NHWC',
  dilations: [1, 1],
});

/**
 * The lazy gradients of conv2d(x, filter) + bias given the output's gradient `g`: each runs only
 * when the tape asks for it, so an input gradient computes no filter gradient.
 */
export function convBiasGradients(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  g: tf.Tensor4D,
  a: Conv2DBiasAttrs,
): { x: () => tf.Tensor; filter: () => tf.Tensor; bias: () => tf.Tensor } {
  return {
    x: () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropInput',
          { dy: g, filter },
          { ...gradientAttrs(a), inputShape: x.shape },
        ) as tf.Tensor,
    filter: () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropFilter',
          { x, dy: g },
          { ...gradientAttrs(a), filterShape: filter.shape },
        ) as tf.Tensor,
    bias: () => tf.sum(g, [0, 1, 2]),
  };
}

let gradientRegistered = false;

function registerGradient(): void {
  if (gradientRegistered) return;
  tf.registerGradient({
    kernelName: CONV2D_BIAS,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      return convBiasGradients(x, filter, dy as tf.Tensor4D, attrs as unknown as Conv2DBiasAttrs);
    },
  });
  gradientRegistered = true;
}

/** y = conv2d(x, filter, strides, pad) + bias (NHWC, no dilation). */
export function conv2dBias(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
  strides: [number, number],
  pad: 'same' | 'valid',
): tf.Tensor4D {
  if (!tf.getKernel(CONV2D_BIAS, tf.getBackend()))
    return tf.add(tf.conv2d(x, filter, strides, pad), bias);
  registerGradient();
  const attrs: Conv2DBiasAttrs = { strides, pad };
  return tf
    .engine()
    .runKernel(
      CONV2D_BIAS,
      { x, filter, bias },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor4D;
}
