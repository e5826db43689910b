/**
 * Where an attack run stands after a finished batch: everything its later batches and its final
 * stats depend on, so that a run stopped there (a killed process) and continued from it ends
 * exactly as a run that never stopped. Random streams are not part of it: each batch derives its
 * own from the seed and its index (eval/attack-run.ts).
 */
import type { ImageSet } from '../data/dataset.js';

/** What a state is checked against: the image set's size and shape. */
type SetShape = Pick<ImageSet, 'count' | 'height' | 'width' | 'channels'>;

/** The running sums the stats are computed from. */
export interface AttackTally {
  /** Examples attacked (clean-correct, and in `only`). */
  perturbed: number;
  /** Of those, the ones the success rate counts (targeted: target ≠ label), and the ones fooled. */
  attacked: number;
  successes: number;
  linfSum: number;
  linfMax: number;
  l2Sum: number;
  l2Max: number;
  l1Sum: number;
  l1Max: number;
}

export const emptyTally = (): AttackTally => ({
  perturbed: 0,
  attacked: 0,
  successes: 0,
  linfSum: 0,
  linfMax: 0,
  l2Sum: 0,
  l2Max: 0,
  l1Sum: 0,
  l1Max: 0,
});

/** One attacked example's outcome: fooled (or sent to its target), counted by the success rate, and its perturbation's sizes (float32). */
interface ExampleOutcome {
  success: number;
  counted: number;
  linf: number;
  l2: number;
  l1: number;
}

/**
 * Adds one attacked example to the tally. The only place the sums are formed: float sums depend
 * on their order, so a run and a merge of its shards' parts (eval/merge.ts) both add example by
 * example, in example order, and get the same bits.
 */
export function addToTally(t: AttackTally, o: ExampleOutcome): void {
  t.perturbed++;
  t.successes += o.success;
  t.attacked += o.counted;
  t.linfSum += o.linf;
  t.linfMax = Math.max(t.linfMax, o.linf);
  t.l2Sum += o.l2;
  t.l2Max = Math.max(t.l2Max, o.l2);
  t.l1Sum += o.l1;
  t.l1Max = Math.max(t.l1Max, o.l1);
}

/** Per example of a run (zeros where it was not attacked): what a tally is added from, kept when a run's parts are merged elsewhere. */
export interface ExampleOutcomes {
  perturbed: Uint8Array;
  counted: Uint8Array;
  success: Uint8Array;
  linf: Float32Array;
  l2: Float32Array;
  l1: Float32Array;
}

export const OUTCOME_FLAGS = ['perturbed', 'counted', 'success'] as const;
export const OUTCOME_SIZES = ['linf', 'l2', 'l1'] as const;

export const emptyOutcomes = (n: number): ExampleOutcomes => ({
  perturbed: new Uint8Array(n),
  counted: new Uint8Array(n),
  success: new Uint8Array(n),
  linf: new Float32Array(n),
  l2: new Float32Array(n),
  l1: new Float32Array(n),
});

/** The outcomes of examples [from, to). */
export function sliceOutcomes(o: ExampleOutcomes, from: number, to: number): ExampleOutcomes {
  return {
    perturbed: o.perturbed.slice(from, to),
    counted: o.counted.slice(from, to),
    success: o.success.slice(from, to),
    linf: o.linf.slice(from, to),
    l2: o.l2.slice(from, to),
    l1: o.l1.slice(from, to),
  };
}

/** Adds the attacked examples among `o`'s to `t`, in example order. */
export function addOutcomes(t: AttackTally, o: ExampleOutcomes): void {
  for (let i = 0; i < o.perturbed.length; i++) {
    if (o.perturbed[i])
      addToTally(t, {
        success: o.success[i],
        counted: o.counted[i],
        linf: o.linf[i],
        l2: o.l2[i],
        l1: o.l1[i],
      });
  }
}

/**
 * Why per-example outcomes disagree with a run's masks (null when they agree): one entry per
 * example, attacked exactly where clean-correct (and in `only`), fooled only where attacked and
 * counted, never fooled and robust, sizes finite, ≥ 0 and 0 where not attacked.
 */
export function outcomesProblem(
  o: ExampleOutcomes,
  cleanCorrect: Uint8Array,
  robust: Uint8Array,
  only?: Uint8Array,
): string | null {
  const n = cleanCorrect.length;
  const all = [...OUTCOME_FLAGS, ...OUTCOME_SIZES] as const;
  const short = all.find((k) => o[k].length !== n);
  if (short) return `outcomes.${short} has ${o[short].length} entries, not ${n}`;
  for (let i = 0; i < n; i++) {
    const p = o.perturbed[i];
    if (p !== (cleanCorrect[i] & (only ? only[i] : 1)))
      return `example ${i} is marked ${p ? '' : 'not '}attacked against its masks`;
    if (o.counted[i] > p || o.success[i] > o.counted[i])
      return `example ${i}: counted or fooled without being attacked (or fooled without being counted)`;
    if (o.success[i] && robust[i]) return `example ${i}: fooled and still robust`;
    for (const k of OUTCOME_SIZES)
      if (!(Number.isFinite(o[k][i]) && o[k][i] >= 0 && (p || o[k][i] === 0)))
        return `example ${i}: its ${k} size is not a finite number ≥ 0 (0 when not attacked)`;
  }
  return null;
}

/**
 * Which adversarial images a run keeps: all (true), or only those of the first `firstCorrect`
 * clean-correct examples — what a gallery shows (8 CIFAR images are 98 KB, all 1000 are 12 MB:
 * the difference matters when the state is saved after every batch).
 */
export type KeepAdversarials = boolean | { firstCorrect: number };

export interface AttackRunState {
  /** Examples done: the batches before this index are finished. */
  seen: number;
  tally: AttackTally;
  /** Seconds spent so far; a resumed run adds its own. */
  seconds: number;
  /** Per example of the first `seen`: clean-correct, and still correct after the attack. */
  cleanCorrect: Uint8Array;
  robust: Uint8Array;
  /** With `outcomes`: per example of the first `seen`, what the tally was added from. */
  outcomes?: ExampleOutcomes;
  /** With keepAdversarials: the kept images of the examples attacked so far (the other examples' rows are their clean images). */
  adversarial?: { firstCorrect?: number; index: Int32Array; images: Float32Array };
}

/**
 * Why `s` cannot continue a run over `set` in batches of `batchSize` with these options (null
 * when it can): a state from another set, batch size or mode, or one whose parts disagree.
 */
export function stateProblem(
  s: AttackRunState,
  set: SetShape,
  o: {
    batchSize: number;
    keepAdversarials?: KeepAdversarials;
    only?: Uint8Array;
    outcomes?: boolean;
  },
): string | null {
  const per = set.height * set.width * set.channels;
  const { seen, tally: t } = s;
  if (!Number.isInteger(seen) || seen < 0 || seen > set.count)
    return `seen ${seen} is not a count of examples from 0 to ${set.count}`;
  if (seen % o.batchSize !== 0 && seen !== set.count)
    return `seen ${seen} is not at the end of a batch of ${o.batchSize}`;
  if (s.cleanCorrect.length !== seen || s.robust.length !== seen)
    return `the masks have ${s.cleanCorrect.length} and ${s.robust.length} entries, not ${seen}`;
  let perturbed = 0;
  for (let i = 0; i < seen; i++) {
    if (
      s.cleanCorrect[i] > 1 ||
      s.robust[i] > s.cleanCorrect[i] ||
      (o.only && s.robust[i] > o.only[i])
    )
      return `example ${i} is robust without being clean-correct (or attacked)`;
    perturbed += s.cleanCorrect[i] & (o.only ? o.only[i] : 1);
  }
  const sums = [t.linfSum, t.linfMax, t.l2Sum, t.l2Max, t.l1Sum, t.l1Max, s.seconds];
  if (!sums.every((v) => Number.isFinite(v) && v >= 0))
    return 'a sum, maximum or the seconds is not a finite number ≥ 0';
  if (t.perturbed !== perturbed)
    return `tally.perturbed is ${t.perturbed}, the masks give ${perturbed}`;
  if (!(
    Number.isInteger(t.attacked) &&
    Number.isInteger(t.successes) &&
    t.successes >= 0 &&
    t.successes <= t.attacked &&
    t.attacked <= perturbed
  ))
    return 'tally.attacked and tally.successes disagree with the examples attacked';
  if (o.outcomes) {
    if (!s.outcomes) return 'it kept no per-example outcomes, which this run keeps';
    const why = outcomesProblem(s.outcomes, s.cleanCorrect, s.robust, o.only?.subarray(0, seen));
    if (why) return why;
    const sum = emptyTally();
    addOutcomes(sum, s.outcomes);
    if ((Object.keys(sum) as (keyof AttackTally)[]).some((k) => sum[k] !== t[k]))
      return 'the tally is not the sum of the per-example outcomes';
  }
  const want = o.keepAdversarials;
  const a = s.adversarial;
  if (!want) return null; // kept images, if any, are not needed
  if (!a) return 'it kept no adversarial images, which this run keeps';
  if (a.firstCorrect !== (want === true ? undefined : want.firstCorrect))
    return 'it kept another selection of adversarial images';
  if (want !== true && a.index.length > want.firstCorrect)
    return `it kept ${a.index.length} images, more than the first ${want.firstCorrect}`;
  if (a.images.length !== a.index.length * per)
    return `${a.index.length} kept images need ${a.index.length * per} values, not ${a.images.length}`;
  for (let k = 0; k < a.index.length; k++) {
    const i = a.index[k];
    if (!(
      i >= 0 &&
      i < seen &&
      (k === 0 || i > a.index[k - 1]) &&
      s.cleanCorrect[i] & (o.only ? o.only[i] : 1)
    ))
      return `kept image ${k} is of example ${i}, not of an attacked one in order`;
  }
  return null;
}
