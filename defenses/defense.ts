/**
 * Defenses as small pieces the training loop composes: each may change the batch (adversarial
 * examples, input noise), the loss (TRADES) or the update (gradient clipping); dropout is part of
 * the model. The loop itself stays the same for all of them.
 */
import { check, checkOption } from '../util/errors.js';
import { checkCountOption, LIMITS } from '../util/limits.js';
import type { ModelMode } from '../models/classifier.js';

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
  /**
   * The model mode FGSM-RS and PGD attack the model in while it trains: inference (the default,
   * recorded as absent: running BN statistics) or 'train' (batch statistics, as Wong et al.'s and
   * Rice et al.'s code attack; the running statistics stay as they were).
   */
  advMode?: ModelMode;
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
  const entries = list.split(',').map((s) => s.trim().toLowerCase());
  // 'pgd,' or ['pgd', ''] is a typo or a lost name, not a shorter list
  checkOption(
    entries.every(Boolean),
    (n) => `${n('defense')} '${list}' has an empty entry: name each defense (none for none)`,
  );
  const names = entries.map((n) => (n === 'adv' ? 'pgd' : n));
  for (const n of names)
    check(
      (DEFENSES as readonly string[]).includes(n),
      `unknown defense '${n}' (one of: ${DEFENSES.join(', ')})`,
    );
  const real = [...new Set(names.filter((n) => n !== 'none'))] as DefenseConfig['names'];
  checkOption(
    !(names.includes('none') && real.length > 0),
    (n) => `${n('defense')} none cannot be combined with ${real.join(', ')}`,
  );
  const adversarial = real.filter((n) => ADVERSARIAL.has(n));
  check(
    adversarial.length <= 1,
    `choose one adversarial training method, got ${adversarial.join(' and ')}`,
  );
  return real;
}

/** The defenses each setting belongs to: a setting given without one of them would do nothing. */
const USED_BY: Record<Exclude<keyof DefenseConfig, 'names'>, readonly string[]> = {
  eps: ['fgsm-rs', 'pgd', 'trades'],
  alpha: ['fgsm-rs', 'pgd', 'trades'],
  steps: ['pgd', 'trades'],
  advRatio: ['fgsm-rs', 'pgd'],
  advMode: ['fgsm-rs', 'pgd'],
  beta: ['trades'],
  clipNorm: ['clip'],
  clipValue: ['clip'],
  noiseStd: ['noise'],
  noiseSamples: ['noise'],
  dropout: ['dropout'],
  blockDropout: ['dropout'],
};

/** Whether `setting` does anything under the defenses `names` (one that is no defense's setting always does). */
export function settingApplies(setting: string, names: readonly string[]): boolean {
  const users = (USED_BY as Record<string, readonly string[]>)[setting];
  return users === undefined || users.some((u) => names.includes(u));
}

/**
 * Checks and completes the settings of `names`. A setting given (not undefined) for a defense
 * that is not among them is refused, never silently ignored; `alsoUsed` lists settings the
 * caller uses elsewhere (train()'s robust evaluation takes eps).
 */
export function defenseConfig(
  names: DefenseConfig['names'],
  o: Partial<DefenseConfig> = {},
  alsoUsed: readonly (keyof DefenseConfig)[] = [],
): DefenseConfig {
  const given = Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined),
  ) as Partial<DefenseConfig>;
  for (const [k, users] of Object.entries(USED_BY))
    checkOption(
      !(k in given) ||
        users.some((u) => (names as string[]).includes(u)) ||
        alsoUsed.includes(k as keyof DefenseConfig),
      (n) =>
        `${n(k)} is set but applies only with ${n('defense')} ${users.join(' or ')} (${n('defense')} is ${names.join(',') || 'none'}): leave it out or add the defense`,
    );
  const c: DefenseConfig = { names, eps: 8 / 255, advRatio: 1, beta: 6, noiseSamples: 1, ...given };
  // eps is a distance between [0,1] pixels (8/255 = 8 levels of 255): beyond 1 every image is reachable
  checkOption(
    Number.isFinite(c.eps) && c.eps >= 0 && c.eps <= 1,
    (n) =>
      `${n('eps')} must be in [0,1] (pixels are in [0,1]; 8/255 is 8 grey levels), got ${c.eps}`,
  );
  const adversarial = names.filter((d) => ADVERSARIAL.has(d));
  checkOption(
    adversarial.length === 0 || c.eps > 0,
    (n) =>
      `${n('eps')} must be > 0 with ${n('defense')} ${adversarial.join(',')} (eps 0 trains on clean images), got ${c.eps}`,
  );
  checkOption(
    c.advRatio >= 0 && c.advRatio <= 1,
    (n) => `${n('advRatio')} must be in [0,1], got ${c.advRatio}`,
  );
  checkOption(
    c.advMode === undefined || c.advMode === 'inference' || c.advMode === 'train',
    (n) => `${n('advMode')} must be inference or train, got '${String(c.advMode)}'`,
  );
  // inference is the default: recorded as absent, so runs made before the setting existed match
  if (c.advMode === 'inference') delete c.advMode;
  checkOption(
    Number.isFinite(c.beta) && c.beta >= 0,
    (n) => `${n('beta')} must be ≥ 0, got ${c.beta}`,
  );
  checkCountOption('noiseSamples', c.noiseSamples, LIMITS.samples);
  if (c.steps !== undefined) checkCountOption('steps', c.steps, LIMITS.steps);
  if (names.includes('clip'))
    checkOption(
      c.clipNorm !== undefined || c.clipValue !== undefined,
      (n) => `${n('defense')} clip needs ${n('clipNorm')} and/or ${n('clipValue')}`,
    );
  // a bound of 0 clips every gradient to nothing: the run would train nothing
  for (const [k, v] of [
    ['clipNorm', c.clipNorm],
    ['clipValue', c.clipValue],
  ] as const)
    if (v !== undefined)
      checkOption(v > 0, (n) => `${n(k)} must be > 0 (0 would stop all training), got ${v}`);
  if (names.includes('noise'))
    checkOption(
      c.noiseStd !== undefined && c.noiseStd > 0,
      (n) => `${n('defense')} noise needs ${n('noiseStd')} > 0`,
    );
  if (names.includes('dropout'))
    checkOption(
      (c.dropout ?? 0) > 0 || (c.blockDropout ?? 0) > 0,
      (n) => `${n('defense')} dropout needs ${n('dropout')} > 0 and/or ${n('blockDropout')} > 0`,
    );
  for (const [k, v] of [
    ['dropout', c.dropout],
    ['blockDropout', c.blockDropout],
  ] as const)
    if (v !== undefined) checkOption(v >= 0 && v < 1, (n) => `${n(k)} must be in [0,1), got ${v}`);
  return c;
}

/** A one-line description such as "pgd(eps=8/255, steps=7)+clip(norm=1)". */
export function describeDefense(c: DefenseConfig | undefined): string {
  if (!c || c.names.length === 0) return 'none';
  return c.names.join('+');
}
