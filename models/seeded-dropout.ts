/**
 * tf.layers' Dropout with masks a training run can replay.
 *
 * The stock layer draws its mask from Math.random unless given a seed, and a seeded one draws the
 * same mask at every step: a dropout model's training could not be reproduced, nor a killed run
 * resumed to the same weights. While a train step has set a seed (`seedDropout`), each Dropout
 * call here draws from (that seed, the call's number in the step) instead: the same batch gives
 * the same masks, the next batch others. Outside a train step (attacks on a randomized model in
 * train mode, EOT) it is the stock layer. The class keeps the name 'Dropout' and its config, so
 * checkpoints stay stock TF.js files; it is registered in place of the stock class.
 */
import tf from '#tfjs';
import { registerLayerClass } from './layer-class.js';
import { substream } from '../util/rng.js';

type DropoutLayer = ReturnType<typeof tf.layers.dropout>;
type DropoutArgs = Parameters<typeof tf.layers.dropout>[0];
type DropoutClass = new (args: DropoutArgs) => DropoutLayer;

// The stock class is not exported by name; an instance leads to it.
const StockDropout = Object.getPrototypeOf(tf.layers.dropout({ rate: 0.5 }))
  .constructor as DropoutClass;

let stream: { seed: number; calls: number } | null = null;

/** From now on Dropout masks come from `seed` and the call count (null: back to Math.random). */
export function seedDropout(seed: number | null): void {
  stream = seed === null ? null : { seed, calls: 0 };
}

export class SeededDropout extends StockDropout {
  static className = 'Dropout';

  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: Record<string, unknown>,
  ): tf.Tensor | tf.Tensor[] {
    const self = this as unknown as {
      rate: number;
      getNoiseShape(x: tf.Tensor): number[] | undefined;
    };
    if (!stream || !kwargs.training || !(self.rate > 0 && self.rate < 1))
      return super.call(inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor;
    const seed = substream(stream.seed, stream.calls++);
    return tf.tidy(() => tf.dropout(x, self.rate, self.getNoiseShape(x), seed));
  }
}

/** Makes loaded models use SeededDropout for their Dropout layers (idempotent). */
export function registerSeededDropout(): void {
  registerLayerClass(SeededDropout);
}

export function seededDropout(args: DropoutArgs): DropoutLayer {
  return new SeededDropout(args);
}
