/**
 * Upper bounds of the counts users give (flags, eval configs, checkpoint metadata, run state):
 * far above any sensible value, far below one that exhausts memory or never ends. A count over
 * its bound is a one-line error, never a V8 abort, an out-of-memory or an endless loop.
 */
import { optionError, RobustError } from './errors.js';
import { int } from './fields.js';

export const LIMITS = {
  /** wasm (XNNPACK) threads. */
  threads: 256,
  /** Images per batch. */
  batchSize: 65_536,
  /** Images taken from a data set (--limit, --eval-limit, --robust-eval). */
  images: 10_000_000,
  epochs: 10_000,
  /** Attack iterations (--steps, --adv-steps, --robust-eval-steps). */
  steps: 100_000,
  restarts: 1_000,
  /** Forward passes per prediction or gradient (EOT samples, noise samples). */
  samples: 1_000,
  checkpointEvery: 1_000_000,
  /** Target classes of APGD-T / FAB-T (capped by the model's classes when run). */
  classes: 100_000,
  /** Channels of a zoo model's first stage. */
  width: 256,
  /** Seeds feed 32-bit generators. */
  seed: 2 ** 32 - 1,
} as const;

/** Checks that `v` is an integer in [min, max], naming it `name` in the one-line error. */
export function checkCount(name: string, v: unknown, max: number, min = 1): asserts v is number {
  const why = int(min, max)(v);
  if (why) throw new RobustError(`${name} ${why}`);
}

/** checkCount for a library option, named as the option (the CLI words it as its flag). */
export function checkCountOption(option: string, v: unknown, max: number): asserts v is number {
  const why = int(1, max)(v);
  if (why) throw optionError((n) => `${n(option)} ${why}`);
}
