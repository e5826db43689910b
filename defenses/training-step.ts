/**
 * One defended training step, in three parts the trainer calls in order: `prepare` makes the
 * examples to fit (adversarial, noisy), `loss` computes the training loss under the gradient
 * tape (cross-entropy, or TRADES), `gradients` post-processes the gradients (clipping).
 */
import tf from '#tfjs';
import { fgsm } from '../attacks/fgsm.js';
import { pgd } from '../attacks/pgd.js';
import { crossEntropy } from '../attacks/losses.js';
import { layersClassifier, type Classifier } from '../models/classifier.js';
import { followingFoldedClassifier } from '../models/fold.js';
import type { DefenseConfig } from './defense.js';
import { clipGradients } from './clip.js';
import { tradesAdversary, tradesLoss } from './trades.js';

export interface Prepared {
  /** The images to compute the training loss on. */
  inputs: tf.Tensor4D;
  /** TRADES: the adversarial counterparts of the clean images. */
  adversarial?: tf.Tensor4D;
}

export class DefendedStep {
  private readonly has: (n: string) => boolean;
  private folded: ReturnType<typeof followingFoldedClassifier> | undefined;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly numClasses: number,
    private readonly config: DefenseConfig | undefined,
  ) {
    const names = new Set<string>(config?.names ?? []);
    this.has = (n) => names.has(n);
  }

  /**
   * What the training attacks run against in inference mode (the default): the current model's
   * BN-folded copy, re-folded from the current weights (same logits and gradients, ~1.3× faster),
   * when the model is a zoo ResNet.
   */
  private attackTarget(): Classifier {
    if (this.folded === undefined) this.folded = followingFoldedClassifier(this.model);
    if (!this.folded) return layersClassifier(this.model);
    this.folded.refresh();
    return this.folded;
  }

  dispose(): void {
    this.folded?.dispose?.();
    this.folded = undefined;
  }

  /** Examples to train on for batch (x, y); `seed` makes random starts reproducible per batch. The caller disposes them. */
  async prepare(x: tf.Tensor4D, y: tf.Tensor1D, seed: number): Promise<Prepared> {
    const c = this.config;
    if (!c) return { inputs: x.clone() };
    let inputs: tf.Tensor4D;
    let adversarial: tf.Tensor4D | undefined;
    if (this.has('trades')) {
      inputs = x.clone();
      adversarial = await tradesAdversary(this.attackTarget(), x, y, {
        eps: c.eps,
        alpha: c.alpha ?? 2 / 255,
        steps: c.steps ?? 10,
        seed,
      });
    } else if (this.has('pgd') || this.has('fgsm-rs')) {
      inputs = await this.adversarialMix(x, y, seed);
    } else inputs = x.clone();
    if (this.has('noise') && c.noiseStd) {
      const noisy = tf.tidy(
        () =>
          inputs.add(
            tf.randomNormal(inputs.shape, 0, c.noiseStd, 'float32', seed + 17),
          ) as tf.Tensor4D,
      );
      inputs.dispose();
      inputs = noisy;
    }
    return { inputs, adversarial };
  }

  /** PGD or FGSM-RS examples for the first advRatio·N examples of the batch, clean ones after them. */
  private async adversarialMix(x: tf.Tensor4D, y: tf.Tensor1D, seed: number): Promise<tf.Tensor4D> {
    const c = this.config!;
    const n = x.shape[0];
    const k = Math.round(c.advRatio * n);
    if (k === 0) return x.clone();
    // in train mode the attack sees batch statistics: the model itself (a folded copy has none)
    const mode = c.advMode ?? 'inference';
    const target = mode === 'train' ? layersClassifier(this.model) : this.attackTarget();
    const attack = this.has('pgd')
      ? pgd(target, {
          eps: c.eps,
          alpha: c.alpha ?? 2 / 255,
          steps: c.steps ?? 7,
          randomStart: true,
          select: 'last',
          seed,
          mode,
        })
      : fgsm(target, { eps: c.eps, alpha: c.alpha, randomStart: true, seed, mode });
    if (k === n) return attack.images(x, y);
    const [xa, xc] = tf.split(x, [k, n - k]);
    const [ya, yc] = tf.split(y, [k, n - k]);
    const adv = await attack.images(xa as tf.Tensor4D, ya as tf.Tensor1D);
    const out = tf.concat([adv, xc]) as tf.Tensor4D;
    tf.dispose([xa, xc, ya, yc, adv]);
    return out;
  }

  /** The training loss (call under the gradient tape) and the logits of `inputs`, for accuracy. */
  loss(p: Prepared, y: tf.Tensor1D): { loss: tf.Scalar; logits: tf.Tensor2D } {
    const logits = this.model.apply(p.inputs, { training: true }) as tf.Tensor2D;
    if (p.adversarial) {
      const advLogits = this.model.apply(p.adversarial, { training: true }) as tf.Tensor2D;
      return { loss: tradesLoss(logits, advLogits, y, this.config!.beta), logits };
    }
    return { loss: crossEntropy(logits, y).mean() as tf.Scalar, logits };
  }

  gradients(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const c = this.config;
    if (!c || !this.has('clip')) return grads;
    return clipGradients(grads, { norm: c.clipNorm, value: c.clipValue });
  }
}
