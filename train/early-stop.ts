/**
 * Wong et al.'s check for catastrophic overfitting (their train_fgsm.py --early-stop), which uses
 * training images only: PGD-5 with step 2/255 and a random start at the run's eps on one batch,
 * in the mode the run's training attack uses.
 */
import tf from '#tfjs';
import type { LayersModel } from '@tensorflow/tfjs';
import { pgd } from '../attacks/pgd.js';
import { layersClassifier } from '../models/classifier.js';
import { foldedClassifier } from '../models/fold.js';
import type { DefenseConfig } from '../defenses/defense.js';

/** The share of the batch (x, y) PGD-5 leaves classified correctly (those it fooled at no step, as the authors' attack_pgd counts). */
export async function batchRobustness(
  model: LayersModel,
  batch: { x: tf.Tensor4D; y: tf.Tensor1D },
  defense: DefenseConfig,
  o: { seed: number },
): Promise<number> {
  const mode = defense.advMode ?? 'inference';
  // inference mode: the BN-folded copy computes the same function faster; train mode needs batch statistics
  const target =
    mode === 'train'
      ? layersClassifier(model)
      : (foldedClassifier(model) ?? layersClassifier(model));
  try {
    const attack = pgd(target, {
      eps: defense.eps,
      alpha: 2 / 255,
      steps: 5,
      randomStart: true,
      seed: o.seed,
      mode,
    });
    const { adv, success, predicted } = await attack(batch.x, batch.y);
    const fooled = tf.tidy(() => success.cast('int32').sum().dataSync()[0]);
    tf.dispose([adv, success, predicted]);
    return 1 - fooled / batch.y.shape[0];
  } finally {
    target.dispose?.();
  }
}
