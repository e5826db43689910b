/**
 * Shape checks for saved results (cell files, results.json): they may be truncated, damaged or
 * edited by hand, so nothing is taken from them before every field a report or a worst case
 * reads has the right type and the numbers agree with each other.
 */
import { RobustError } from '../util/errors.js';
import { parseEvalConfig } from './config.js';
import type { CellResult, GridResult, ModelSummary } from './grid.js';

/** A field check: null when `v` is fine, else what is wrong with it. */
type Check = (v: unknown) => string | null;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str: Check = (v) => (typeof v === 'string' ? null : 'not a string');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'not true/false');
const num = (min = -Infinity, max = Infinity): Check => (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? null : `not a number in [${min}, ${max}]`);
const int = (min: number): Check => (v) => (Number.isInteger(v) && (v as number) >= min ? null : `not an integer ≥ ${min}`);
const optional = (c: Check): Check => (v) => (v === undefined ? null : c(v));
const oneOf = (...xs: unknown[]): Check => (v) => (xs.includes(v) ? null : `not one of ${xs.map((x) => JSON.stringify(x)).join(', ')}`);
const either = (a: Check, b: Check): Check => (v) => (a(v) === null || b(v) === null ? null : a(v));
const share = num(0, 1);

/** Standard base64 exactly as Buffer writes it (Buffer's decoder silently skips anything else). */
const base64: Check = (v) => (typeof v === 'string' && v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v) ? null : 'not base64');

/** The first field of `v` that fails its check, as "field: why"; null when all pass. */
function badField(v: unknown, shape: Record<string, Check>): string | null {
  if (!isObject(v)) return 'not a JSON object';
  for (const [k, c] of Object.entries(shape)) {
    const why = c(v[k]);
    if (why) return `${k} ${v[k] === undefined ? 'missing' : why}`;
  }
  return null;
}

const nested = (shape: Record<string, Check>): Check => (v) => badField(v, shape);

const SETTINGS = {
  name: str, norm: oneOf('linf', 'l2'), eps: num(0), alpha: optional(num(0)), steps: optional(int(1)), restarts: optional(int(1)),
  randomStart: optional(bool), momentum: optional(num(0)), loss: str, targeted: optional(either(oneOf('random', 'least-likely'), int(0))),
  mode: oneOf('inference', 'train'), eotSamples: int(1), seed: int(0),
};

const STATS = {
  n: int(1), clean_acc: share, robust_acc: share, success_rate: share, attacked: int(0),
  linf_mean: num(0), linf_max: num(0), l2_mean: num(0), l2_max: num(0), seconds: num(0), img_per_s: num(0),
};

const strings: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? null : 'not a list of strings');
const CELL = { model: str, attack: str, eps: num(0), settings: nested(SETTINGS), stats: nested(STATS), robust: base64, gallery: optional(base64), after: optional(strings) };

const CHECKS = { zero_grad_share: share, nonfinite_grad_share: share, no_ascent_share: optional(share), outputs_look_like_probabilities: bool, checked: int(0) };

const MODEL = { model: str, arch: str, params: int(0), defense: str, randomized: bool, n: int(1), clean_acc: share, checks: nested(CHECKS) };

/**
 * Why `v` is not a cell over `n` examples (null when it is one): the shape, a robustness mask of
 * n zeros and ones, and robust_acc equal to the mask's share of ones.
 */
export function cellProblem(v: unknown, n: number): string | null {
  const bad = badField(v, CELL);
  if (bad) return bad;
  const c = v as unknown as CellResult;
  if (c.stats.n !== n) return `stats.n is ${c.stats.n}, expected ${n}`;
  const mask = Buffer.from(c.robust, 'base64');
  if (mask.length !== n) return `robust mask has ${mask.length} entries, expected ${n}`;
  if (mask.some((b) => b > 1)) return 'robust mask holds values other than 0 and 1';
  const ones = mask.reduce((s, b) => s + b, 0);
  if (Math.abs(ones / n - c.stats.robust_acc) > 1e-9) return `stats.robust_acc ${c.stats.robust_acc} disagrees with the robust mask (${ones}/${n})`;
  if (c.stats.robust_acc > c.stats.clean_acc + 1e-9) return 'stats.robust_acc exceeds stats.clean_acc';
  return null;
}

/** Checks a parsed results.json; throws a one-line RobustError naming `file` and the first bad field. */
export function checkGridResult(v: unknown, file: string): GridResult {
  const fail = (why: string) => new RobustError(`${file}: not a usable robust eval result (${why})`);
  const top = badField(v, { config: (c) => (isObject(c) ? null : 'not an object'), backend: str, date: str, models: (m) => (Array.isArray(m) ? null : 'not a list'), cells: (c) => (Array.isArray(c) ? null : 'not a list') });
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
    const bad = badField(m, MODEL);
    if (bad) throw fail(`models[${i}].${bad}`);
    const summary = m as ModelSummary;
    if (models.has(summary.model)) throw fail(`model ${JSON.stringify(summary.model)} listed twice`);
    models.set(summary.model, summary);
  });
  const seen = new Set<string>();
  r.cells.forEach((c, i) => {
    const model = isObject(c) && typeof c.model === 'string' ? models.get(c.model) : undefined;
    if (!model) throw fail(`cells[${i}].model is not one of the models`);
    const bad = cellProblem(c, model.n);
    if (bad) throw fail(`cells[${i}].${bad}`);
    const cell = c as unknown as CellResult;
    if (!config.attacks.includes(cell.attack) || !config.eps.includes(cell.eps)) throw fail(`cells[${i}] (${cell.attack} at eps ${cell.eps}) is not in the config's attacks × eps`);
    const key = JSON.stringify([cell.model, cell.attack, cell.eps]);
    if (seen.has(key)) throw fail(`cells[${i}] repeats ${cell.attack} at eps ${cell.eps} for one model`);
    seen.add(key);
  });
  return { ...(v as GridResult), config, worst: [] };
}
