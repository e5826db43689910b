/**
 * tf.layers' BatchNormalization with a fused training-mode op.
 *
 * In training the stock layer normalises through tf.moments and lets autodiff differentiate the
 * statistics op by op; `batchNormTraining` does the same maths in four passes over the data
 * (backend/ops/batchnorm-train.ts). Inference is the stock code. The class keeps the name
 * 'BatchNormalization' and its config, so checkpoints stay stock TF.js files; it is registered in
 * place of the stock class, so loaded models get it too.
 */
import tf from '#tfjs';
import { registerLayerClass } from './layer-class.js';
import { batchNormTraining } from '../backend/ops/batchnorm-train.js';

type BatchNormLayer = ReturnType<typeof tf.layers.batchNormalization>;
type BatchNormArgs = Parameters<typeof tf.layers.batchNormalization>[0];
type BatchNormClass = new (args: BatchNormArgs) => BatchNormLayer;

// The stock class is not exported by name; an instance leads to it.
const StockBatchNorm = Object.getPrototypeOf(tf.layers.batchNormalization({}))
  .constructor as BatchNormClass;

interface BatchNormFields {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: tf.LayerVariable | null;
  beta?: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

const f = Math.fround;

/**
 * A moving statistic as the stock layer updates it: v ← v − (v − batch)·(1 − momentum), each
 * operation rounded to float32. Batch statistics computed on the host (wasm, cpu) update it in one
 * loop over its channels: as three tfjs ops it was ~110 kernel calls per ResNet-20 train step,
 * about as long as the SGD update, for a few hundred numbers. Same values either way.
 */
export function updateMovingAverage(
  v: tf.LayerVariable,
  batch: tf.Tensor | Float32Array,
  momentum: number,
): void {
  if (batch instanceof Float32Array) {
    const old = v.read().dataSync();
    const decay = f(1 - momentum);
    const next = new Float32Array(old.length);
    for (let j = 0; j < old.length; j++) next[j] = f(old[j] - f(f(old[j] - batch[j]) * decay));
    tf.tidy(() => {
      v.write(tf.tensor(next, v.read().shape));
    });
    return;
  }
  tf.tidy(() => {
    const old = v.read();
    v.write(tf.sub(old, tf.mul(tf.sub(old, batch), 1 - momentum)));
  });
}

export class FusedBatchNormalization extends StockBatchNorm {
  static className = 'BatchNormalization';

  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as BatchNormFields;
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const channelsLast = self.axis === -1 || self.axis === x.rank - 1;
    const complete = Boolean(self.gamma && self.beta);
    if (!channelsLast || (!kwargs.training && complete)) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      // Without scale or center (a user's model) the stock layer hands the FusedBatchNorm kernel
      // no scale or offset, and the tape then fails saving them for the gradient (a TypeError
      // mid-attack): ones and zeros stand in, the same function.
      const channels = x.shape[x.rank - 1];
      const gamma = (self.gamma?.read() ?? tf.ones([channels])) as tf.Tensor1D;
      const beta = (self.beta?.read() ?? tf.zeros([channels])) as tf.Tensor1D;
      if (!kwargs.training)
        return tf.batchNorm(
          x,
          self.movingMean.read() as tf.Tensor1D,
          self.movingVariance.read() as tf.Tensor1D,
          beta,
          gamma,
          self.epsilon,
        );
      const { y, mean, variance, hostStats } = batchNormTraining(x, gamma, beta, self.epsilon);
      updateMovingAverage(self.movingMean, hostStats?.mean ?? mean, self.momentum);
      updateMovingAverage(self.movingVariance, hostStats?.variance ?? variance, self.momentum);
      return y;
    });
  }
}

/** Makes loaded models use FusedBatchNormalization for their BatchNorm layers (idempotent). */
export function registerFusedBatchNorm(): void {
  registerLayerClass(FusedBatchNormalization);
}

export function fusedBatchNorm(args: BatchNormArgs): BatchNormLayer {
  return new FusedBatchNormalization(args);
}
