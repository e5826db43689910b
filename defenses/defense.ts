/**
 * Defenses as small pieces the training loop composes: each may change the batch (adversarial
 * examples, input noise), the loss (TRADES) or the update (gradient clipping); dropout is part of
 * the model. The loop itself stays the same for all of them.
 */
import { check } from '../util/errors.js';
import { checkCount, LIMITS } from '../util/limits.js';

export const DEFENSES = [
  'none',
  'fgsm-rs',
  'pgd',
  'adv',
  'trades',
  'noise',
  'dropout',
  'clip',
] as const;
export type DefenseName = (typeof DEFENSES)[number];

/** Every setting of the defenses of a run (recorded in its config and checkpoint metadata). */
export interface DefenseConfig {
  /** The defenses combined, e.g. ['pgd', 'clip']; [] = none. */
  names: Exclude<DefenseName, 'none' | 'adv'>[];
  /** Linf budget of adversarial training (pixels). */
  eps: number;
  /** Step size; default 2/255 (PGD, TRADES) or 1.25·eps (FGSM-RS). */
  alpha?: number;
  /** Attack steps of PGD-AT (default 7) and TRADES (default 10). */
  steps?: number;
  /** Share of each batch replaced by adversarial examples (PGD, FGSM-RS); default 1. */
  advRatio: number;
  /** TRADES weight of the KL term (default 6). */
  beta: number;
  /** Gradient clipping by global norm and/or by value. */
  clipNorm?: number;
  clipValue?: number;
  /** Gaussian input noise (std in pixels) during training and, as a randomized model, at inference. */
  noiseStd?: number;
  /** Draws averaged per prediction by the noisy model at inference. */
  noiseSamples: number;
  /** Dropout before the classifier and inside blocks. */
  dropout?: number;
  blockDropout?: number;
}

export const ADVERSARIAL: ReadonlySet<string> = new Set(['fgsm-rs', 'pgd', 'trades']);

/** Parses a defense list such as `pgd,clip` into names, mapping the alias adv → pgd and rejecting conflicts. */
export function parseDefenses(list: string): DefenseConfig['names'] {
  const names = list
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((n) => (n === 'adv' ? 'pgd' : n));
  for (const n of names)
    check(
      (DEFENSES as readonly string[]).includes(n),
      `unknown defense '${n}' (one of: ${DEFENSES.join(', ')})`,
    );
  const real = [...new Set(names.filter((n) => n !== 'none'))] as DefenseConfig['names'];
  check(
    !(names.includes('none') && real.length > 0),
    `defense none cannot be combined with ${real.join(', ')}`,
  );
  const adversarial = real.filter((n) => ADVERSARIAL.has(n));
  check(
    adversarial.length <= 1,
    `choose one adversarial training method, got ${adversarial.join(' and ')}`,
  );
  return real;
}

export function defenseConfig(
  names: DefenseConfig['names'],
  o: Partial<DefenseConfig> = {},
): DefenseConfig {
  const c: DefenseConfig = { names, eps: 8 / 255, advRatio: 1, beta: 6, noiseSamples: 1, ...o };
  check(Number.isFinite(c.eps) && c.eps >= 0, `eps must be ≥ 0, got ${c.eps}`);
  check(c.advRatio >= 0 && c.advRatio <= 1, `advRatio must be in [0,1], got ${c.advRatio}`);
  check(Number.isFinite(c.beta) && c.beta >= 0, `beta must be ≥ 0, got ${c.beta}`);
  checkCount('noiseSamples', c.noiseSamples, LIMITS.samples);
  if (c.steps !== undefined) checkCount('steps', c.steps, LIMITS.steps);
  if (names.includes('clip'))
    check(
      c.clipNorm !== undefined || c.clipValue !== undefined,
      'defense clip needs clipNorm and/or clipValue',
    );
  // a bound of 0 clips every gradient to nothing: the run would train nothing
  for (const [k, v] of [
    ['clipNorm', c.clipNorm],
    ['clipValue', c.clipValue],
  ] as const)
    if (v !== undefined) check(v > 0, `${k} must be > 0 (0 would stop all training), got ${v}`);
  if (names.includes('noise'))
    check(c.noiseStd !== undefined && c.noiseStd > 0, 'defense noise needs noiseStd > 0');
  if (names.includes('dropout'))
    check(
      (c.dropout ?? 0) > 0 || (c.blockDropout ?? 0) > 0,
      'defense dropout needs dropout > 0 and/or blockDropout > 0',
    );
  for (const [k, v] of [
    ['dropout', c.dropout],
    ['blockDropout', c.blockDropout],
  ] as const)
    if (v !== undefined) check(v >= 0 && v < 1, `${k} must be in [0,1), got ${v}`);
  return c;
}

/** A one-line description such as "pgd(eps=8/255, steps=7)+clip(norm=1)". */
export function describeDefense(c: DefenseConfig | undefined): string {
  if (!c || c.names.length === 0) return 'none';
  return c.names.join('+');
}
