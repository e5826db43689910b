/**
 * The evaluation grid's settings from a JSON file and/or the command line. Everything arrives as
 * unknown values and is checked here, so a bad config file is a one-line RobustError.
 */
import { check, RobustError } from '../util/errors.js';
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
    throw new RobustError(
      `${key} must be a comma-separated string or a list of strings, got ${JSON.stringify(raw)}`,
    );
  return items.map((s) => s.trim()).filter(Boolean);
}

function int(v: unknown, key: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  // decimal digits only, as on the command line: '0x10' or '1e3' in a config file is not a count
  const n =
    typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  check(
    Number.isInteger(n) && n >= min && n <= max,
    `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
  );
  return n;
}

/** Checks and completes the settings; `source` names where they came from (for errors). */
export function parseEvalConfig(
  values: Partial<Record<string, unknown>>,
  source = 'the grid',
): EvalConfig {
  const unknown = Object.keys(values).filter(
    (k) => !(CONFIG_KEYS as readonly string[]).includes(k),
  );
  check(
    unknown.length === 0,
    `${source}: unknown key ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${CONFIG_KEYS.join(', ')})`,
  );
  const models = list(values.models, 'models', '');
  check(
    models.length > 0,
    'give the models to evaluate: --models ckpt/a,ckpt/b (or "models" in --config)',
  );
  check(
    new Set(models).size === models.length,
    `each model may appear once in --models, got ${models.join(', ')}`,
  );
  check(
    values.preset === undefined || typeof values.preset === 'string',
    `preset must be a name, got ${JSON.stringify(values.preset)}`,
  );
  check(
    values.cascade === undefined || typeof values.cascade === 'boolean',
    `cascade must be true or false, got ${JSON.stringify(values.cascade)}`,
  );
  const norm = values.norm ?? 'linf';
  check(
    typeof norm === 'string' && (NORMS as string[]).includes(norm),
    `--norm must be one of ${NORMS.join(', ')}, got ${JSON.stringify(norm)}`,
  );
  const named =
    values.preset === undefined ? undefined : preset(values.preset as string, norm as NormName);
  const attacks = list(
    values.attacks,
    'attacks',
    named ? named.attacks.join(',') : 'fgsm,pgd,apgd-ce',
  );
  check(
    attacks.length > 0,
    'give at least one attack: --attacks pgd,apgd-ce (or --preset autoattack)',
  );
  attacks.forEach(parseAttackEntry);
  check(new Set(attacks).size === attacks.length, 'each attack may appear once in --attacks');
  // a preset fixes its attacks and protocol: the results must be what its name says
  if (named)
    check(
      attacks.join() === named.attacks.join() && values.cascade !== false,
      `preset ${values.preset} runs ${named.attacks.join(', ')} as a cascade: leave out --attacks and --cascade`,
    );
  // its numbers carry the protocol's name, so its settings are the reference's: no overrides
  if (named) {
    const changed = (['steps', 'restarts', 'eotSamples'] as const).filter(
      (k) => values[k] !== undefined,
    );
    check(
      changed.length === 0,
      `preset ${values.preset} uses the reference settings: leave out ${changed.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} (or give --attacks with --cascade)`,
    );
  }
  const cascade = named?.cascade ?? (values.cascade as boolean | undefined) ?? false;
  const eps = list(values.eps, 'eps', DEFAULT_EPS_GRID[norm as NormName]).map((e) =>
    number('--eps', { min: 0 })(e),
  );
  check(eps.length > 0, '--eps needs at least one value');
  check(
    values.data === undefined || typeof values.data === 'string',
    `data must be a data set name, got ${JSON.stringify(values.data)}`,
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
