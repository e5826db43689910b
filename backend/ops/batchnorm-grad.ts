/**
 * A broadcasting gradient for FusedBatchNorm.
 *
 * tfjs-core's gradient tiles mean, variance and scale up to the input's full shape before
 * multiplying; on wasm the naive single-threaded Tile took 40% of a ResNet-20 train step.
 * Here every per-channel factor broadcasts instead, and the per-channel sums are reductions
 * over all leading axes. Mathematically the same gradient (tests compare it with autodiff
 * through the elementary ops); registered for every backend.
 */
import tf from '#tfjs';

/** Sums `t` over every axis where `like` (a per-channel tensor) broadcasts, keeping its shape. */
function sumToShape(t: tf.Tensor, like: tf.Tensor): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(like.shape, t.shape);
  if (axes.length === 0) return t.reshape(like.shape);
  return t.sum(axes).reshape(like.shape);
}

const batchNormGrad: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const g = dy as tf.Tensor;
    const [x, mean, variance, scale] = saved;
    const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const inv = tf.rsqrt(tf.add(variance, eps)); // per channel
    const gamma = scale ?? tf.onesLike(inv);
    // Full-size terms are made inside the closures that need them (each runs in its own tidy): an
    // input gradient (an attack step) asks for dx only.
    // dy·γ/σ is a BatchNorm of dy with zero mean and no offset: one fused pass (our kernel on wasm).
    const dyGamma = () => tf.batchNorm(g, tf.zerosLike(mean), variance, undefined, scale, eps);
    const gradTimesCentered = () => tf.mul(g, tf.sub(x, mean));
    return {
      x: dyGamma,
      mean: () => tf.neg(sumToShape(dyGamma(), mean)),
      variance: () =>
        tf.mul(
          sumToShape(gradTimesCentered(), variance),
          tf.mul(gamma, tf.mul(tf.pow(inv, 3), -0.5)),
        ),
      scale: () => tf.mul(sumToShape(gradTimesCentered(), gamma), inv),
      offset: () => sumToShape(g, mean),
    };
  },
};

export function registerBatchNormGradient(): void {
  tf.registerGradient(batchNormGrad);
}
