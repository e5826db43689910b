/**
 * Runs one attack over an image set and measures it, following AutoAttack's protocol: only the
 * examples the model classifies correctly are attacked; an example is robust when it is still
 * classified correctly afterwards.
 */
import * as tf from '@tensorflow/tfjs';
import type { ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, epochBatches, makeBatch } from '../data/batches.js';
import type { Attack } from '../attacks/attack.js';
import { chooseTargets } from '../attacks/targets.js';
import { asClassifier, type Classifier } from '../models/classifier.js';
import { Rng } from '../util/rng.js';
import { TaskProgress } from '../util/task-progress.js';

export interface AttackStats {
  n: number;
  clean_acc: number;
  robust_acc: number;
  /** Share of attacked examples (clean-correct; for targeted attacks, also target ≠ label) that the attack fooled / sent to the target. */
  success_rate: number;
  attacked: number;
  /** Perturbation size over attacked examples, in [0,1] pixel units. */
  linf_mean: number;
  linf_max: number;
  l2_mean: number;
  l2_max: number;
  seconds: number;
  img_per_s: number;
}

export interface AttackRun {
  stats: AttackStats;
  /** Adversarial images in [0,1] NHWC (clean images where nothing was attacked), when requested. */
  adversarial?: Float32Array;
  /** Per-example outcome: clean correct, robust (correct after attack). */
  cleanCorrect: Uint8Array;
  robust: Uint8Array;
}

export interface AttackRunOptions {
  batchSize?: number;
  keepAdversarials?: boolean;
  /** Seed for target choice (targeted attacks). */
  seed?: number;
  quiet?: boolean;
  label?: string;
  /** Attack only the examples marked 1 (and clean-correct); the others count as not robust (a cascade's earlier attacks broke them). */
  only?: Uint8Array;
  /** Called between batches; returning true stops early (the stats cover the batches done). */
  shouldStop?: () => boolean;
}

function maskIndices(mask: ArrayLike<number>): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) out.push(i);
  return Int32Array.from(out);
}

export async function runAttack(model: tf.LayersModel | Classifier, attack: Attack, set: ImageSet, o: AttackRunOptions = {}): Promise<AttackRun> {
  const classifier = asClassifier(model);
  const batchSize = o.batchSize ?? 128;
  const per = set.height * set.width * set.channels;
  const adversarial = o.keepAdversarials ? new Float32Array(set.count * per) : undefined;
  const cleanCorrect = new Uint8Array(set.count);
  const robust = new Uint8Array(set.count);
  const rng = new Rng((o.seed ?? attack.info.seed) ^ 0x68e31da4);
  const progress = new TaskProgress(o.label ?? attack.info.name, set.count, o.quiet);
  let attacked = 0;
  let perturbed = 0;
  let successes = 0;
  let seen = 0;
  let robustCount = 0;
  let linfSum = 0;
  let linfMax = 0;
  let l2Sum = 0;
  let l2Max = 0;
  const t0 = performance.now();
  for (const indices of epochBatches(set.count, batchSize)) {
    if (o.shouldStop?.()) break;
    const b = makeBatch(set, indices, NO_AUGMENT, rng);
    const correct = tf.tidy(() => classifier.logits(b.x, 'inference').argMax(1).cast('int32').equal(b.y));
    const okClean = correct.dataSync();
    correct.dispose();
    const start = indices[0];
    const idx = maskIndices(o.only ? okClean.map((v, i) => v & o.only![start + i]) : okClean);
    let batchAdv: tf.Tensor4D | undefined;
    okClean.forEach((v, i) => (cleanCorrect[start + i] = v));
    if (idx.length > 0) {
      const at = tf.tensor1d(idx, 'int32');
      const x = b.x.gather(at);
      const y = b.y.gather(at);
      const targets = attack.info.targeted !== undefined ? chooseTargets(attack.info.targeted, y, () => classifier.logits(x, 'inference'), classifier.numClasses, rng) : undefined;
      const adv = await attack(x, y, { targets });
      const outcome = tf.tidy(() => {
        const pred = classifier.logits(adv, 'inference').argMax(1).cast('int32');
        const delta = adv.sub(x);
        return tf.stack([
          pred.equal(y).cast('float32'),
          targets ? pred.equal(targets).logicalAnd(targets.notEqual(y)).cast('float32') : pred.notEqual(y).cast('float32'),
          targets ? targets.notEqual(y).cast('float32') : tf.onesLike(y).cast('float32'),
          delta.abs().max([1, 2, 3]),
          delta.square().sum([1, 2, 3]).sqrt(),
        ]);
      });
      const o5 = outcome.dataSync();
      const m = idx.length;
      perturbed += m;
      for (let i = 0; i < m; i++) {
        robust[start + idx[i]] = o5[i];
        robustCount += o5[i];
        successes += o5[m + i];
        attacked += o5[2 * m + i];
        linfSum += o5[3 * m + i];
        linfMax = Math.max(linfMax, o5[3 * m + i]);
        l2Sum += o5[4 * m + i];
        l2Max = Math.max(l2Max, o5[4 * m + i]);
      }
      if (adversarial) batchAdv = tf.tidy(() => tf.tensorScatterUpdate(b.x, at.reshape([-1, 1]), adv) as tf.Tensor4D);
      tf.dispose([outcome, at, x, y, targets, adv]);
    }
    if (adversarial) {
      const src = batchAdv ?? b.x;
      adversarial.set(src.dataSync(), start * per);
    }
    tf.dispose([b.x, b.y, batchAdv]);
    seen += indices.length;
    progress.update(seen, `robust ${((100 * robustCount) / seen).toFixed(1)}%`);
  }
  progress.stop();
  const seconds = (performance.now() - t0) / 1000;
  const sum = (a: Uint8Array) => a.subarray(0, seen).reduce((s, v) => s + v, 0);
  const nPerturbed = Math.max(1, perturbed);
  return {
    stats: {
      n: seen,
      clean_acc: seen ? sum(cleanCorrect) / seen : 0,
      robust_acc: seen ? sum(robust) / seen : 0,
      success_rate: attacked ? successes / attacked : 0,
      attacked,
      linf_mean: linfSum / nPerturbed,
      linf_max: linfMax,
      l2_mean: l2Sum / nPerturbed,
      l2_max: l2Max,
      seconds,
      img_per_s: seconds > 0 ? seen / seconds : 0,
    },
    adversarial,
    cleanCorrect: cleanCorrect.subarray(0, seen),
    robust: robust.subarray(0, seen),
  };
}
