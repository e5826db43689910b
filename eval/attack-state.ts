/**
 * Where an attack run stands after a finished batch: everything its later batches and its final
 * stats depend on, so that a run stopped there (a killed process) and continued from it ends
 * exactly as a run that never stopped.
 */
import type { ImageSet } from '../data/dataset.js';

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

export const emptyTally = (): AttackTally => ({ perturbed: 0, attacked: 0, successes: 0, linfSum: 0, linfMax: 0, l2Sum: 0, l2Max: 0, l1Sum: 0, l1Max: 0 });

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
  /** The random streams later batches draw from: the run's own (target choice) and the attack's (random starts, its targets). */
  targetRng: number;
  attackRng: number;
  /** With keepAdversarials: the kept images of the examples attacked so far (the other examples' rows are their clean images). */
  adversarial?: { firstCorrect?: number; index: Int32Array; images: Float32Array };
}

const uint32 = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/**
 * Why `s` cannot continue a run over `set` in batches of `batchSize` with these options (null
 * when it can): a state from another set, batch size or mode, or one whose parts disagree.
 */
export function stateProblem(s: AttackRunState, set: ImageSet, o: { batchSize: number; keepAdversarials?: KeepAdversarials; only?: Uint8Array }): string | null {
  const per = set.height * set.width * set.channels;
  const { seen, tally: t } = s;
  if (!Number.isInteger(seen) || seen < 0 || seen > set.count) return `seen ${seen} is not a count of examples from 0 to ${set.count}`;
  if (seen % o.batchSize !== 0 && seen !== set.count) return `seen ${seen} is not at the end of a batch of ${o.batchSize}`;
  if (s.cleanCorrect.length !== seen || s.robust.length !== seen) return `the masks have ${s.cleanCorrect.length} and ${s.robust.length} entries, not ${seen}`;
  let perturbed = 0;
  for (let i = 0; i < seen; i++) {
    if (s.cleanCorrect[i] > 1 || s.robust[i] > s.cleanCorrect[i] || (o.only && s.robust[i] > o.only[i])) return `example ${i} is robust without being clean-correct (or attacked)`;
    perturbed += s.cleanCorrect[i] & (o.only ? o.only[i] : 1);
  }
  const sums = [t.linfSum, t.linfMax, t.l2Sum, t.l2Max, t.l1Sum, t.l1Max, s.seconds];
  if (!sums.every((v) => Number.isFinite(v) && v >= 0)) return 'a sum, maximum or the seconds is not a finite number ≥ 0';
  if (t.perturbed !== perturbed) return `tally.perturbed is ${t.perturbed}, the masks give ${perturbed}`;
  if (!(Number.isInteger(t.attacked) && Number.isInteger(t.successes) && t.successes >= 0 && t.successes <= t.attacked && t.attacked <= perturbed)) return 'tally.attacked and tally.successes disagree with the examples attacked';
  if (!uint32(s.targetRng) || !uint32(s.attackRng)) return 'a random stream state is not a 32-bit unsigned integer';
  const want = o.keepAdversarials;
  const a = s.adversarial;
  if (!want) return null; // kept images, if any, are not needed
  if (!a) return 'it kept no adversarial images, which this run keeps';
  if (a.firstCorrect !== (want === true ? undefined : want.firstCorrect)) return 'it kept another selection of adversarial images';
  if (want !== true && a.index.length > want.firstCorrect) return `it kept ${a.index.length} images, more than the first ${want.firstCorrect}`;
  if (a.images.length !== a.index.length * per) return `${a.index.length} kept images need ${a.index.length * per} values, not ${a.images.length}`;
  for (let k = 0; k < a.index.length; k++) {
    const i = a.index[k];
    if (!(i >= 0 && i < seen && (k === 0 || i > a.index[k - 1]) && s.cleanCorrect[i] & (o.only ? o.only[i] : 1))) return `kept image ${k} is of example ${i}, not of an attacked one in order`;
  }
  return null;
}
