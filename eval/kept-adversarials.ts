/**
 * The adversarial images an attack run keeps: of every example, or of the first k clean-correct
 * ones (the others' rows hold their clean images). Which rows were kept is tracked, so the kept
 * images — and only those — go into a run's saved state and come back from it.
 */
import { NO_AUGMENT, gatherBatch } from '../data/batches.js';
import type { ImageSet } from '../data/dataset.js';
import { Rng } from '../util/rng.js';
import type { AttackRunState, KeepAdversarials } from './attack-state.js';

export class KeptAdversarials {
  /** All examples' rows, [0,1] NHWC. */
  readonly images: Float32Array;
  private readonly per: number;
  private readonly first: number;
  /** Examples whose row holds an attack's output, in order. */
  private readonly kept: number[] = [];
  /** Clean-correct examples seen so far (the first `first` of them are kept). */
  private correct = 0;

  constructor(
    private readonly set: ImageSet,
    private readonly keep: Exclude<KeepAdversarials, false>,
  ) {
    this.per = set.height * set.width * set.channels;
    this.first = keep === true ? Infinity : keep.firstCorrect;
    this.images = new Float32Array(set.count * this.per);
  }

  /** Puts back the rows of the examples a saved state covers: its kept images, clean images elsewhere. */
  restore(s: AttackRunState): void {
    const { per } = this;
    this.images.set(
      gatherBatch(
        this.set,
        Int32Array.from({ length: s.seen }, (_, i) => i),
        NO_AUGMENT,
        new Rng(0),
      ),
    ); // no augmentation: draws nothing
    s.adversarial!.index.forEach((i, k) => {
      this.images.set(s.adversarial!.images.subarray(k * per, (k + 1) * per), i * per);
      this.kept.push(i);
    });
    this.correct = s.cleanCorrect.reduce((a, v) => a + v, 0);
  }

  /** One batch from example `start`: its clean and adversarial pixels, which were clean-correct and which attacked. */
  add(
    start: number,
    clean: Float32Array,
    adversarial: Float32Array,
    cleanCorrect: ArrayLike<number>,
    attacked: Uint8Array,
  ): void {
    const { per } = this;
    for (let i = 0; i < cleanCorrect.length; i++) {
      const selected = cleanCorrect[i] === 1 && this.correct++ < this.first;
      this.images.set(
        (selected ? adversarial : clean).subarray(i * per, (i + 1) * per),
        (start + i) * per,
      );
      if (selected && attacked[i]) this.kept.push(start + i);
    }
  }

  /** The kept images for a saved state. */
  state(): NonNullable<AttackRunState['adversarial']> {
    const { per, kept } = this;
    const images = new Float32Array(kept.length * per);
    kept.forEach((i, k) => images.set(this.images.subarray(i * per, (i + 1) * per), k * per));
    return {
      ...(this.keep !== true && { firstCorrect: this.first }),
      index: Int32Array.from(kept),
      images,
    };
  }
}
