/**
 * The evaluation grid's settings from a JSON file and/or the command line. Everything arrives as
 * unknown values and is checked here, so a bad config file is a one-line RobustError.
 */
import { check, checkOption, optionError } from '../util/errors.js';
import { showValue } from '../util/fields.js';
import { number } from '../util/numbers.js';
import { LIMITS } from '../util/limits.js';
import { parseAttackEntry, type EvalConfig } from './grid-core.js';
import { preset } from './presets.js';
import { NORMS, type NormName } from '../attacks/norms.js';

/** The budgets a grid runs at when none are given: up to each norm's usual CIFAR-10 budget (attacks' DEFAULT_EPS). */
const DEFAULT_EPS_GRID: Record<NormName, string> = {
  linf: '0,2/255,4/255,8/255',
  l2: '0,0.125,0.25,0.5',
  l1: '0,3,6,12',
};

export const CONFIG_KEYS = [
  'models',
  'attacks',
  'preset',
  'cascade',
  'eps',
  'norm',
  'steps',
  'restarts',
  'eotSamples',
  'limit',
  'batchSize',
  'seed',
  'data',
] as const;

function list(v: unknown, key: string, fallback: string): string[] {
  const raw = v === undefined ? fallback : v;
  let items: string[];
  if (typeof raw === 'string') items = raw.split(',');
  else if (Array.isArray(raw) && raw.every((x) => typeof x === 'string' || typeof x === 'number'))
    items = raw.map(String);
  else
    throw optionError(
      (n) =>
        `${n(key)} must be a comma-separated string or a list of strings, got ${showValue(raw)}`,
    );
  return items.map((s) => s.trim()).filter(Boolean);
}

function int(v: unknown, key: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  // decimal digits only, as on the command line: '0x10' or '1e3' in a config file is not a count
  const n =
    typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  checkOption(
    Number.isInteger(n) && n >= min && n <= max,
    (o) => `${o(key)} must be an integer from ${min} to ${max}, got ${showValue(v)}`,
  );
  return n;
}

/**
 * Checks and completes the settings; `source` names where they came from (for errors), and
 * `alsoKnown` the keys its caller took out of `values` before (named among the known ones when a
 * key is unknown).
 */
export function parseEvalConfig(
  values: Partial<Record<string, unknown>>,
  source = 'the grid',
  alsoKnown: readonly string[] = [],
): EvalConfig {
  const unknown = Object.keys(values).filter(
    (k) => !(CONFIG_KEYS as readonly string[]).includes(k),
  );
  check(
    unknown.length === 0,
    `${source}: unknown key ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${[...CONFIG_KEYS, ...alsoKnown].join(', ')})`,
  );
  const models = list(values.models, 'models', '');
  checkOption(
    models.length > 0,
    (n) => `give the models to evaluate: ${n('models')} ckpt/a,ckpt/b (or "models" in the config)`,
  );
  checkOption(
    new Set(models).size === models.length,
    (n) => `each model may appear once in ${n('models')}, got ${models.join(', ')}`,
  );
  checkOption(
    values.preset === undefined || typeof values.preset === 'string',
    (n) => `${n('preset')} must be a name, got ${showValue(values.preset)}`,
  );
  checkOption(
    values.cascade === undefined || typeof values.cascade === 'boolean',
    (n) => `${n('cascade')} must be true or false, got ${showValue(values.cascade)}`,
  );
  const norm = values.norm ?? 'linf';
  checkOption(
    typeof norm === 'string' && (NORMS as string[]).includes(norm),
    (n) => `${n('norm')} must be one of ${NORMS.join(', ')}, got ${showValue(norm)}`,
  );
  const named =
    values.preset === undefined ? undefined : preset(values.preset as string, norm as NormName);
  const attacks = list(
    values.attacks,
    'attacks',
    named ? named.attacks.join(',') : 'fgsm,pgd,apgd-ce',
  );
  checkOption(
    attacks.length > 0,
    (n) => `give at least one attack: ${n('attacks')} pgd,apgd-ce (or ${n('preset')} autoattack)`,
  );
  attacks.forEach(parseAttackEntry);
  checkOption(
    new Set(attacks).size === attacks.length,
    (n) => `each attack may appear once in ${n('attacks')}`,
  );
  // a preset fixes its attacks and protocol: the results must be what its name says
  if (named)
    checkOption(
      attacks.join() === named.attacks.join() && values.cascade !== false,
      (n) =>
        `preset ${values.preset} runs ${named.attacks.join(', ')} as a cascade: leave out ${n('attacks')} and ${n('cascade')}`,
    );
  // its numbers carry the protocol's name, so its settings are the reference's: no overrides
  if (named) {
    const changed = (['steps', 'restarts', 'eotSamples'] as const).filter(
      (k) => values[k] !== undefined,
    );
    checkOption(
      changed.length === 0,
      (n) =>
        `preset ${values.preset} uses the reference settings: leave out ${changed.map(n).join(', ')} (or give ${n('attacks')} with ${n('cascade')})`,
    );
  }
  const cascade = named?.cascade ?? (values.cascade as boolean | undefined) ?? false;
  const eps = list(values.eps, 'eps', DEFAULT_EPS_GRID[norm as NormName]).map((e) =>
    number('eps', { min: 0 })(e),
  );
  checkOption(eps.length > 0, (n) => `${n('eps')} needs at least one value`);
  const over = eps.find((e) => norm === 'linf' && e > 1);
  checkOption(
    over === undefined,
    (n) =>
      `${n('eps')} must be in [0,1] for the Linf norm (pixels are in [0,1]; 8/255 is 8 grey levels), got ${over}`,
  );
  checkOption(
    values.data === undefined || typeof values.data === 'string',
    (n) => `${n('data')} must be a data set name, got ${showValue(values.data)}`,
  );
  return {
    models,
    attacks,
    eps: [...new Set(eps)].sort((a, b) => a - b),
    norm: norm as NormName,
    steps: int(values.steps, 'steps', 1, LIMITS.steps),
    restarts: int(values.restarts, 'restarts', 1, LIMITS.restarts),
    eotSamples: int(values.eotSamples, 'eotSamples', 1, LIMITS.samples),
    limit: int(values.limit, 'limit', 1, LIMITS.images) ?? 1000,
    batchSize: int(values.batchSize, 'batchSize', 1, LIMITS.batchSize) ?? 128,
    seed: int(values.seed, 'seed', 0, LIMITS.seed) ?? 0,
    data: values.data as string | undefined,
    ...(named ? { preset: values.preset as string } : {}),
    ...(cascade ? { cascade } : {}),
  };
}
