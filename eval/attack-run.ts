/**
 * Runs one attack over an image set and measures it, following AutoAttack's protocol: only the
 * examples the model classifies correctly are attacked; an example is robust when it is still
 * classified correctly afterwards. A run reports its state after every batch and can continue from
 * such a state (eval/attack-state.ts) as if it had never stopped. Each batch draws its randomness
 * (random starts, random targets) from streams derived from the seed and the batch's index alone,
 * so any batch can run anywhere: after a restart, or as part of another process's share.
 */
import tf from '#tfjs';
import type { ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, epochBatches, makeBatch } from '../data/batches.js';
import type { Attack } from '../attacks/attack.js';
import { describeProgress, type AttackProgress } from '../attacks/progress.js';
import { chooseTargets } from '../attacks/targets.js';
import { asClassifier, type Classifier } from '../models/classifier.js';
import { sameUnderTape } from '../models/tape-exact.js';
import { Rng, substream } from '../util/rng.js';
import { check } from '../util/errors.js';
import { TaskProgress } from '../util/platform.js';
import {
  addToTally,
  emptyOutcomes,
  emptyTally,
  sliceOutcomes,
  stateProblem,
  type AttackRunState,
  type AttackTally,
  type ExampleOutcomes,
  type KeepAdversarials,
} from './attack-state.js';
import { KeptAdversarials } from './kept-adversarials.js';

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
  /** Absent in cells written before the L1 threat model. */
  l1_mean?: number;
  l1_max?: number;
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
  /** With `outcomes`: each example's outcome (zeros where it was not attacked). */
  outcomes?: ExampleOutcomes;
}

export interface AttackRunOptions {
  batchSize?: number;
  /** Keep the adversarial images: all, or those of the first k clean-correct examples (`{ firstCorrect: k }`). */
  keepAdversarials?: KeepAdversarials;
  /** Seed for target choice (targeted attacks). */
  seed?: number;
  quiet?: boolean;
  label?: string;
  /** Attack only the examples marked 1 (and clean-correct); the others count as not robust (a cascade's earlier attacks broke them). */
  only?: Uint8Array;
  /** Called between batches; returning true stops early (the stats cover the batches done). */
  shouldStop?: () => boolean;
  /** Continue from the state an earlier run of this attack on this set, with these options, reported through `onBatch`. */
  resume?: AttackRunState;
  /** Called after every finished batch with the run's state: a point to resume from. */
  onBatch?: (state: AttackRunState) => void;
  /**
   * The index of the set's first batch in a larger set it is a slice of (a shard's share of a
   * cell, starting at example firstBatch·batchSize): batch k draws the randomness batch
   * firstBatch + k of the whole set draws, so the slice's results are the whole run's there.
   */
  firstBatch?: number;
  /** Keep each example's outcome (AttackRun.outcomes, and in the state), for merging runs over slices exactly. */
  outcomes?: boolean;
  /** Told where the batch in progress stands after each of the attack's steps (the results are the same with or without it). */
  onProgress?: (p: RunPosition) => void;
}

/** Where a run stands inside the batch in progress. */
export interface RunPosition {
  /** Images of the set in finished batches (a resumed run's included), of `total`. */
  seen: number;
  total: number;
  /** The batch in progress, from 1, of `batches`, and its images (the attack works on `attack.examples` of them). */
  batch: number;
  batches: number;
  images: number;
  /** The attack's position inside the batch. */
  attack: AttackProgress;
}

/** A position for people: "batch 2/8: target 3/9 · step 45/100 · 61/112 still robust". */
export function describePosition(p: RunPosition): string {
  return `batch ${p.batch}/${p.batches}: ${describeProgress(p.attack)}`;
}

/** The images a position counts as done: the finished batches and the done share of the one in progress (for speeds and ETAs). */
export const positionDone = (p: RunPosition): number => p.seen + p.attack.done * p.images;

/** The stats of a run over `seen` examples from its tally and masks (also those of a cell merged from its shards' parts). */
export function statsOf(
  tally: AttackTally,
  cleanCorrect: Uint8Array,
  robust: Uint8Array,
  seen: number,
  seconds: number,
): AttackStats {
  const { perturbed, attacked, successes, linfSum, linfMax, l2Sum, l2Max, l1Sum, l1Max } = tally;
  const sum = (a: Uint8Array) => a.subarray(0, seen).reduce((s, v) => s + v, 0);
  const nPerturbed = Math.max(1, perturbed);
  return {
    n: seen,
    clean_acc: seen ? sum(cleanCorrect) / seen : 0,
    robust_acc: seen ? sum(robust) / seen : 0,
    success_rate: attacked ? successes / attacked : 0,
    attacked,
    linf_mean: linfSum / nPerturbed,
    linf_max: linfMax,
    l2_mean: l2Sum / nPerturbed,
    l2_max: l2Max,
    l1_mean: l1Sum / nPerturbed,
    l1_max: l1Max,
    seconds,
    img_per_s: seconds > 0 ? seen / seconds : 0,
  };
}

/** Seeds of a run's two random families: its own (target choice) and the attack's (random starts, the attack's own targets). */
const TARGET_STREAMS = 0x68e31da4;
const ATTACK_STREAMS = 0x2545f491;

function maskIndices(mask: ArrayLike<number>): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) out.push(i);
  return Int32Array.from(out);
}

export async function runAttack(
  model: tf.LayersModel | Classifier,
  attack: Attack,
  set: ImageSet,
  o: AttackRunOptions = {},
): Promise<AttackRun> {
  const classifier = asClassifier(model);
  const batchSize = o.batchSize ?? 128;
  const from = o.resume;
  if (from) {
    const why = stateProblem(from, set, {
      batchSize,
      keepAdversarials: o.keepAdversarials,
      only: o.only,
      outcomes: o.outcomes,
    });
    check(why === null, () => `cannot resume the attack run: ${why}`);
  }
  const kept = o.keepAdversarials ? new KeptAdversarials(set, o.keepAdversarials) : undefined;
  const cleanCorrect = new Uint8Array(set.count);
  const robust = new Uint8Array(set.count);
  const outcomes = o.outcomes ? emptyOutcomes(set.count) : undefined;
  const tally = from ? { ...from.tally } : emptyTally();
  let seen = from?.seen ?? 0;
  let robustCount = 0;
  if (from) {
    cleanCorrect.set(from.cleanCorrect);
    robust.set(from.robust);
    robustCount = from.robust.reduce((a, v) => a + v, 0);
    kept?.restore(from);
    if (outcomes)
      for (const k of Object.keys(outcomes) as (keyof ExampleOutcomes)[])
        outcomes[k].set(from.outcomes![k]);
  }
  const secondsBefore = from?.seconds ?? 0;
  const progress = new TaskProgress(o.label ?? attack.info.name, set.count, o.quiet, seen);
  const t0 = performance.now();
  const seconds = () => secondsBefore + (performance.now() - t0) / 1000;
  const state = (): AttackRunState => ({
    seen,
    tally: { ...tally },
    seconds: seconds(),
    cleanCorrect: cleanCorrect.slice(0, seen),
    robust: robust.slice(0, seen),
    ...(outcomes && { outcomes: sliceOutcomes(outcomes, 0, seen) }),
    ...(kept && { adversarial: kept.state() }),
  });
  const targetSeed = (o.seed ?? attack.info.seed) ^ TARGET_STREAMS;
  const attackSeed = attack.info.seed ^ ATTACK_STREAMS;
  const batches = epochBatches(set.count, batchSize);
  // the attack hears nothing unless someone listens: a hook costs it a little per step
  const listening = progress.shown || o.onProgress !== undefined;
  for (const [k, indices] of batches.entries()) {
    if (indices[0] < seen) continue; // done before the run was resumed
    if (o.shouldStop?.()) break;
    const batch = (o.firstBatch ?? 0) + k;
    const rng = new Rng(substream(targetSeed, batch));
    attack.randomState = substream(attackSeed, batch);
    const b = makeBatch(set, indices, NO_AUGMENT, rng);
    const correct = tf.tidy(() =>
      classifier.logits(b.x, 'inference').argMax(1).cast('int32').equal(b.y),
    );
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
      const targets =
        attack.info.targeted !== undefined
          ? chooseTargets(
              attack.info.targeted,
              y,
              () => classifier.logits(x, 'inference'),
              classifier.numClasses,
              rng,
            )
          : undefined;
      // The attack's own verdict is the model's when it came from one forward pass of this model in
      // inference mode computing what a plain pass computes. A randomized model (noise, dropout,
      // batch statistics in train mode) gets a fresh draw here instead, in inference mode, which is
      // the number AutoAttack reports for it; EOT's mean logits, or a tape that rounds differently,
      // get the same independent check.
      const own =
        attack.classifier === classifier &&
        attack.info.mode === 'inference' &&
        attack.info.eotSamples === 1 &&
        sameUnderTape(classifier, x);
      const onProgress = listening
        ? (a: AttackProgress) => {
            const p = {
              seen,
              total: set.count,
              batch: k + 1,
              batches: batches.length,
              images: indices.length,
              attack: a,
            };
            progress.inner(positionDone(p), describePosition(p));
            o.onProgress?.(p);
          }
        : undefined;
      const { adv, success, predicted } = await attack(x, y, { targets, onProgress });
      const outcome = tf.tidy(() => {
        const pred = own ? predicted : classifier.logits(adv, 'inference').argMax(1).cast('int32');
        const delta = adv.sub(x);
        return tf.stack([
          pred.equal(y).cast('float32'),
          targets
            ? pred.equal(targets).logicalAnd(targets.notEqual(y)).cast('float32')
            : pred.notEqual(y).cast('float32'),
          targets ? targets.notEqual(y).cast('float32') : tf.onesLike(y).cast('float32'),
          delta.abs().max([1, 2, 3]),
          delta.square().sum([1, 2, 3]).sqrt(),
          delta.abs().sum([1, 2, 3]),
        ]);
      });
      const o5 = outcome.dataSync();
      const m = idx.length;
      for (let i = 0; i < m; i++) {
        const e = start + idx[i];
        robust[e] = o5[i];
        robustCount += o5[i];
        const one = {
          success: o5[m + i],
          counted: o5[2 * m + i],
          linf: o5[3 * m + i],
          l2: o5[4 * m + i],
          l1: o5[5 * m + i],
        };
        addToTally(tally, one);
        if (outcomes) {
          outcomes.perturbed[e] = 1;
          outcomes.success[e] = one.success;
          outcomes.counted[e] = one.counted;
          outcomes.linf[e] = one.linf;
          outcomes.l2[e] = one.l2;
          outcomes.l1[e] = one.l1;
        }
      }
      if (kept)
        batchAdv = tf.tidy(
          () => tf.tensorScatterUpdate(b.x, at.reshape([-1, 1]), adv) as tf.Tensor4D,
        );
      tf.dispose([outcome, at, x, y, targets, adv, success, predicted]);
    }
    if (kept) {
      const attacked = new Uint8Array(indices.length);
      idx.forEach((i) => (attacked[i] = 1));
      kept.add(
        start,
        b.x.dataSync() as Float32Array,
        (batchAdv ?? b.x).dataSync() as Float32Array,
        okClean,
        attacked,
      );
    }
    tf.dispose([b.x, b.y, batchAdv]);
    seen += indices.length;
    progress.update(seen, `robust ${((100 * robustCount) / seen).toFixed(1)}%`);
    o.onBatch?.(state());
  }
  progress.stop();
  return {
    stats: statsOf(tally, cleanCorrect, robust, seen, seconds()),
    adversarial: kept?.images,
    cleanCorrect: cleanCorrect.subarray(0, seen),
    robust: robust.subarray(0, seen),
    ...(outcomes && { outcomes: sliceOutcomes(outcomes, 0, seen) }),
  };
}
