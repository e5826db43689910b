/** Learning-rate schedules as a function of progress through training. */
import { optionError } from '../util/errors.js';

export const SCHEDULES = ['step', 'cosine', 'onecycle', 'cyclic', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

/**
 * lr at `t` ∈ [0, 1] (fraction of all iterations done):
 *  - step: ×0.1 at 50% and again at 75% (the classic CIFAR recipe's 0.1 → 0.01 → 0.001);
 *  - cosine: lr·½(1 + cos πt);
 *  - onecycle: linear warm-up from 0 to lr over the first 40%, then linear down to 0;
 *  - cyclic: the triangle of Wong et al.'s FGSM code (PyTorch's CyclicLR from 0, half up, half
 *    down): linear from 0 to lr at 50%, then down to 0;
 *  - constant.
 */
export function learningRate(schedule: ScheduleName, lr: number, t: number): number {
  switch (schedule) {
    case 'step':
      return t < 0.5 ? lr : t < 0.75 ? lr * 0.1 : lr * 0.01;
    case 'cosine':
      return 0.5 * lr * (1 + Math.cos(Math.PI * t));
    case 'onecycle':
      return t < 0.4 ? (lr * t) / 0.4 : (lr * (1 - t)) / 0.6;
    case 'cyclic':
      return lr * (1 - Math.abs(2 * t - 1));
    case 'constant':
      return lr;
  }
}

export function parseSchedule(name: string): ScheduleName {
  if (!(SCHEDULES as readonly string[]).includes(name))
    throw optionError(
      (n) => `unknown ${n('schedule')} '${name}': choose one of ${SCHEDULES.join(', ')}`,
    );
  return name as ScheduleName;
}
