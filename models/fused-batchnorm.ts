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
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
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
    if (!kwargs.training || !channelsLast || !self.gamma || !self.beta)
      return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(
        x,
        self.gamma!.read() as tf.Tensor1D,
        self.beta!.read() as tf.Tensor1D,
        self.epsilon,
      );
      // Moving averages as the stock layer: v ← v − (v − batch value)·(1 − momentum).
      for (const [v, batch] of [
        [self.movingMean, mean],
        [self.movingVariance, variance],
      ] as const) {
        tf.tidy(() => {
          const old = v.read();
          v.write(tf.sub(old, tf.mul(tf.sub(old, batch), 1 - self.momentum)));
        });
      }
      return y;
    });
  }
}

let registered = false;

/** Makes loaded models use FusedBatchNormalization for their BatchNorm layers (idempotent). */
export function registerFusedBatchNorm(): void {
  if (registered) return;
  tf.serialization.registerClass(
    FusedBatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
  registered = true;
}

export function fusedBatchNorm(args: BatchNormArgs): BatchNormLayer {
  return new FusedBatchNormalization(args);
}
