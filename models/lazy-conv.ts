/**
 * tf.layers' Conv2D with a lazy filter gradient.
 *
 * The stock layer calls `tf.fused.conv2d`, whose custom gradient computes the filter gradient
 * eagerly, even when only the input gradient is asked for: on wasm that was ~40% of every attack
 * step. This subclass calls the plain `tf.conv2d`, whose registered gradient computes dx and dW
 * only when they are needed, so an attack's input gradient skips dW and training still gets it.
 * With a bias (BN-folded models) it calls conv2dBias, whose gradient is just as lazy.
 * It keeps the class name 'Conv2D' and the config, so checkpoints stay stock TF.js files; it is
 * registered in place of the stock class, so loaded models get it too.
 */
import tf from '#tfjs';
import { registerLayerClass } from './layer-class.js';
import { conv2dBias } from '../backend/ops/conv-bias.js';

type Conv2DLayer = ReturnType<typeof tf.layers.conv2d>;
type Conv2DArgs = Parameters<typeof tf.layers.conv2d>[0];
type Conv2DClass = new (args: Conv2DArgs) => Conv2DLayer;

// The stock class is not exported by name; an instance leads to it.
const StockConv2D = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 }))
  .constructor as Conv2DClass;

interface ConvFields {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  strides: [number, number];
  padding: 'same' | 'valid' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
  activation: { apply(t: tf.Tensor): tf.Tensor };
}

export class LazyConv2D extends StockConv2D {
  static className = 'Conv2D';

  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as ConvFields;
    if (self.dataFormat !== 'channelsLast' || self.padding === 'causal')
      return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = self.kernel.read() as tf.Tensor4D;
      const pad = self.padding as 'same' | 'valid';
      const undilated = self.dilationRate.every((d) => d === 1);
      let y: tf.Tensor;
      if (self.bias && undilated)
        y = conv2dBias(x, kernel, self.bias.read() as tf.Tensor1D, self.strides, pad);
      else {
        y = tf.conv2d(x, kernel, self.strides, pad, 'NHWC', self.dilationRate);
        if (self.bias) y = tf.add(y, self.bias.read());
      }
      return self.activation.apply(y);
    });
  }
}

/** Makes loaded models use LazyConv2D for their Conv2D layers (idempotent). */
export function registerLazyConv2D(): void {
  registerLayerClass(LazyConv2D);
}

export function lazyConv2d(args: Conv2DArgs): Conv2DLayer {
  return new LazyConv2D(args);
}
