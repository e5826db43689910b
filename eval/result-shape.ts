/**
 * Shape checks for saved results (cell files, results.json): they may be truncated, damaged or
 * edited by hand, so nothing is taken from them before every field a report or a worst case
 * reads has the right type and the numbers agree with each other.
 */
import { RobustError } from '../util/errors.js';
import { fromBase64 } from '../util/platform.js';
import {
  bool,
  either,
  fieldProblem,
  int,
  isObject,
  leaf,
  nested,
  num,
  object,
  oneOf,
  optional,
  str,
  strings,
} from '../util/fields.js';
import { parseEvalConfig } from './config.js';
import type { CellResult, GridResult, ModelSummary } from './grid-core.js';

const share = num(0, 1);
/** Standard base64 exactly as Buffer writes it (Buffer's decoder silently skips anything else). */
export const base64 = leaf(
  (v) => typeof v === 'string' && v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v),
  'base64',
);

export const SETTINGS = {
  name: str,
  norm: oneOf('linf', 'l2', 'l1'),
  eps: num(0),
  alpha: optional(num(0)),
  steps: optional(int(1)),
  restarts: optional(int(1)),
  randomStart: optional(bool),
  largeEps: optional(bool),
  momentum: optional(num(0)),
  loss: str,
  targeted: optional(either(oneOf('random', 'least-likely'), int(0))),
  mode: oneOf('inference', 'train'),
  eotSamples: int(1),
  seed: int(0),
};

const STATS = {
  n: int(1),
  clean_acc: share,
  robust_acc: share,
  success_rate: share,
  attacked: int(0),
  linf_mean: num(0),
  linf_max: num(0),
  l2_mean: num(0),
  l2_max: num(0),
  l1_mean: optional(num(0)),
  l1_max: optional(num(0)),
  seconds: num(0),
  img_per_s: num(0),
};

const CELL = {
  model: str,
  attack: str,
  eps: num(0),
  settings: nested(SETTINGS),
  stats: nested(STATS),
  robust: base64,
  gallery: optional(base64),
  gallery_classes: optional(nested({ true: strings, predicted: strings })),
  after: optional(strings),
  backend: optional(str),
  compute: optional(str),
};

export const CHECKS = {
  zero_grad_share: share,
  nonfinite_grad_share: share,
  no_ascent_share: optional(share),
  outputs_look_like_probabilities: bool,
  checked: int(0),
};

const MODEL = {
  model: str,
  arch: str,
  params: int(0),
  input: optional(str),
  labels: optional(oneOf('predicted')),
  defense: str,
  randomized: bool,
  n: int(1),
  clean_acc: share,
  checks: nested(CHECKS),
};

/**
 * Why `v` is not a cell over `n` examples (null when it is one): the shape, a robustness mask of
 * n zeros and ones, and robust_acc equal to the mask's share of ones.
 */
export function cellProblem(v: unknown, n: number): string | null {
  const bad = fieldProblem(v, CELL);
  if (bad) return bad;
  const c = v as unknown as CellResult;
  if (c.stats.n !== n) return `stats.n is ${c.stats.n}, expected ${n}`;
  const mask = fromBase64(c.robust);
  if (mask.length !== n) return `robust mask has ${mask.length} entries, expected ${n}`;
  if (mask.some((b) => b > 1)) return 'robust mask holds values other than 0 and 1';
  const ones = mask.reduce((s, b) => s + b, 0);
  if (Math.abs(ones / n - c.stats.robust_acc) > 1e-9)
    return `stats.robust_acc ${c.stats.robust_acc} disagrees with the robust mask (${ones}/${n})`;
  if (c.stats.robust_acc > c.stats.clean_acc + 1e-9)
    return 'stats.robust_acc exceeds stats.clean_acc';
  return null;
}

/** Checks a parsed results.json; throws a one-line RobustError naming `file` and the first bad field. */
export function checkGridResult(v: unknown, file: string): GridResult {
  const fail = (why: string) =>
    new RobustError(`${file}: not a usable robust eval result (${why})`);
  const list = leaf(Array.isArray, 'a list');
  const top = fieldProblem(v, {
    config: object,
    backend: str,
    compute: optional(str),
    date: str,
    models: list,
    cells: list,
    incomplete: optional(str),
  });
  if (top) throw fail(top);
  const r = v as Record<string, unknown> & { models: unknown[]; cells: unknown[] };
  let config;
  try {
    config = parseEvalConfig(r.config as Record<string, unknown>, 'config');
  } catch (e) {
    throw e instanceof RobustError ? fail(`config: ${e.message}`) : e;
  }
  const models = new Map<string, ModelSummary>();
  r.models.forEach((m, i) => {
    const bad = fieldProblem(m, MODEL);
    if (bad) throw fail(`models[${i}].${bad}`);
    const summary = m as ModelSummary;
    if (models.has(summary.model))
      throw fail(`model ${JSON.stringify(summary.model)} listed twice`);
    models.set(summary.model, summary);
  });
  const seen = new Set<string>();
  r.cells.forEach((c, i) => {
    const model = isObject(c) && typeof c.model === 'string' ? models.get(c.model) : undefined;
    if (!model) throw fail(`cells[${i}].model is not one of the models`);
    const bad = cellProblem(c, model.n);
    if (bad) throw fail(`cells[${i}].${bad}`);
    const cell = c as unknown as CellResult;
    if (!config.attacks.includes(cell.attack) || !config.eps.includes(cell.eps))
      throw fail(
        `cells[${i}] (${cell.attack} at eps ${cell.eps}) is not in the config's attacks × eps`,
      );
    const key = JSON.stringify([cell.model, cell.attack, cell.eps]);
    if (seen.has(key))
      throw fail(`cells[${i}] repeats ${cell.attack} at eps ${cell.eps} for one model`);
    seen.add(key);
  });
  return { ...(v as GridResult), config, worst: [] };
}
