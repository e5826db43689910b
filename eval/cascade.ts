/**
 * AutoAttack's protocol on one image set: the attacks run in turn, each only on the examples the
 * ones before it left robust (clean-correct examples only, as always). The result is the robust
 * accuracy after each attack and, per example, the adversarial of the attack that broke it.
 */
import type { ImageSet } from '../data/dataset.js';
import type { Attack } from '../attacks/attack.js';
import type { Classifier } from '../models/classifier.js';
import { runAttack, type AttackRun, type AttackRunOptions } from './attack-run.js';

export interface CascadeStep {
  attack: Attack;
  /** The name shown for this step (a grid entry such as "apgd-ce:restarts=5"). */
  label: string;
}

export interface CascadeRun {
  /** Per step, its run: robust accuracy and mask after this and every earlier attack. */
  steps: { label: string; run: AttackRun }[];
  /** The final robust mask (1 = survived every attack). */
  robust: Uint8Array;
  cleanCorrect: Uint8Array;
  /** With `keepAdversarials`: per example, the adversarial of the attack that broke it, else the last attack's point. */
  adversarial?: Float32Array;
  /** False when stopped by `shouldStop` before the last attack finished. */
  complete: boolean;
}

export async function runCascade(
  classifier: Classifier,
  steps: CascadeStep[],
  set: ImageSet,
  o: Omit<AttackRunOptions, 'only' | 'label'> = {},
): Promise<CascadeRun> {
  const per = set.height * set.width * set.channels;
  const done: CascadeRun['steps'] = [];
  let survivors: Uint8Array | undefined;
  let cleanCorrect: Uint8Array = new Uint8Array(set.count);
  let adversarial: Float32Array | undefined;
  for (const step of steps) {
    const run = await runAttack(classifier, step.attack, set, {
      ...o,
      only: survivors,
      label: step.label,
    });
    if (run.stats.n < set.count)
      return {
        steps: done,
        robust: survivors ?? cleanCorrect,
        cleanCorrect,
        adversarial,
        complete: false,
      };
    if (run.adversarial) {
      if (!adversarial) adversarial = run.adversarial;
      // this attack's points replace the earlier ones only where it attacked (the survivors so far)
      else
        for (let i = 0; i < set.count; i++)
          if (survivors![i])
            adversarial.set(run.adversarial.subarray(i * per, (i + 1) * per), i * per);
    }
    cleanCorrect = run.cleanCorrect;
    survivors = run.robust;
    done.push({ label: step.label, run });
  }
  return {
    steps: done,
    robust: survivors ?? cleanCorrect,
    cleanCorrect,
    adversarial,
    complete: true,
  };
}
