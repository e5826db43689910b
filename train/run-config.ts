/**
 * What a resumed run may change. A checkpoint continues the run it was made by: the settings that
 * shape the weights (data, model, optimizer, schedule, defense…) must match the run's, or be
 * changed on purpose with `override`, and then the change is recorded. The checkpoint frequency
 * may differ freely; epochs may grow to extend a run. The backend and its compute variant
 * (kernels, ROBUST_WINOGRAD, threads) may change too — a run may move to another machine — but
 * they change the last bits of what follows, so such a change is noted and recorded, never silent.
 */
import { optionError } from '../util/errors.js';
import { zooEntry } from '../models/zoo.js';
import { checkCount, LIMITS } from '../util/limits.js';
import type { TrainConfig } from './trainer.js';
import { legacyCompute } from '../backend/variant.js';
import { settingApplies } from '../defenses/defense.js';

/** One setting that matters, named by the option (TrainOptions) a user changes it with. */
interface Field {
  option: string;
  get: (c: TrainConfig) => unknown;
  /** The checkpoint holds the model built from it: it cannot change, not even with override. */
  fixed?: boolean;
  /**
   * Settings it takes its value from when not given itself (evalLimit is limit's, the images
   * follow limit and data, the defense's settings appear with a defense): when one of those
   * differs, it is listed only if the user also set it differently.
   */
  follows?: readonly string[];
  /** The option that sets it directly (default: `option`); none: it is always derived. */
  given?: string | null;
}

const augmentOf = ({ augment: a }: TrainConfig) =>
  a.cropPad > 0 || a.flip
    ? [a.cropPad > 0 ? `crop ±${a.cropPad}` : '', a.flip ? 'flip' : ''].filter(Boolean).join('+')
    : 'off';

/** The early-stop rule a run goes by, by name; the robust-evaluation rule with no robust evaluation (as runs recorded it) is none. */
const earlyStopRule = (c: TrainConfig) =>
  c.earlyStop === 'train-batch'
    ? 'train-batch'
    : c.earlyStop === true && (c.robustEval?.limit ?? 0) > 0
      ? 'robust-eval'
      : 'off';

/** Every setting that changes the trained weights or what the run logs, in the order reported. */
export const RESUME_FIELDS: readonly Field[] = [
  { option: 'model', get: (c) => c.model, fixed: true },
  // compared as they take effect: no width is the architecture's width, no evalLimit is limit
  { option: 'width', get: (c) => c.width ?? zooEntry(c.model).spec.width, fixed: true },
  { option: 'data', get: (c) => c.data, fixed: true },
  {
    option: 'dataDir (the images)',
    given: 'dataDir',
    follows: ['data', 'limit', 'evalLimit'],
    get: (c) => c.dataHash?.slice(0, 12),
  },
  { option: 'limit', get: (c) => c.limit },
  { option: 'evalLimit', follows: ['limit'], get: (c) => c.evalLimit ?? c.limit },
  { option: 'batchSize', get: (c) => c.batchSize },
  { option: 'lr', get: (c) => c.lr },
  { option: 'momentum', get: (c) => c.momentum },
  { option: 'weightDecay', get: (c) => c.weightDecay },
  { option: 'decay', get: (c) => c.decay ?? 'kernels' },
  { option: 'schedule', get: (c) => c.schedule },
  { option: 'augment', get: augmentOf },
  { option: 'seed', get: (c) => c.seed },
  { option: 'defense', get: (c) => (c.defense?.names.length ? c.defense.names.join(',') : 'none') },
  { option: 'eps', follows: ['defense'], get: (c) => c.defense?.eps },
  { option: 'alpha', follows: ['defense'], get: (c) => c.defense?.alpha },
  { option: 'advSteps', follows: ['defense'], get: (c) => c.defense?.steps },
  { option: 'advRatio', follows: ['defense'], get: (c) => c.defense?.advRatio },
  {
    option: 'advMode',
    follows: ['defense'],
    // inference is recorded as absent: shown by name where a training attack runs
    get: (c) =>
      c.defense && settingApplies('advMode', c.defense.names)
        ? (c.defense.advMode ?? 'inference')
        : undefined,
  },
  { option: 'beta', follows: ['defense'], get: (c) => c.defense?.beta },
  { option: 'clipNorm', follows: ['defense'], get: (c) => c.defense?.clipNorm },
  { option: 'clipValue', follows: ['defense'], get: (c) => c.defense?.clipValue },
  { option: 'noiseStd', follows: ['defense'], get: (c) => c.defense?.noiseStd },
  { option: 'noiseSamples', follows: ['defense'], get: (c) => c.defense?.noiseSamples },
  { option: 'dropout', get: (c) => c.defense?.dropout, fixed: true },
  { option: 'blockDropout', get: (c) => c.defense?.blockDropout, fixed: true },
  { option: 'robustEval', follows: ['defense'], get: (c) => c.robustEval?.limit ?? 0 },
  {
    option: 'robustEvalSteps',
    follows: ['robustEval', 'defense'],
    get: (c) => c.robustEval?.steps,
  },
  {
    option: 'eps (robust eval)',
    given: null,
    follows: ['eps', 'robustEval', 'defense'],
    get: (c) => c.robustEval?.eps,
  },
  { option: 'earlyStop', follows: ['defense', 'robustEval'], get: (c) => earlyStopRule(c) },
];

export interface Difference {
  option: string;
  old: unknown;
  new: unknown;
  fixed: boolean;
}

const show = (v: unknown) =>
  v === undefined ? '(unset)' : typeof v === 'number' ? String(+v.toPrecision(6)) : String(v);

/** `limit 64 → 128`; `name` words the option (the CLI: its flag). */
export function describeDifference(
  d: Difference,
  name: (option: string) => string = (o) => o,
): string {
  return `${name(d.option)} ${show(d.old)} → ${show(d.new)}`;
}

/** The settings (other than epochs) in which `requested` differs from the run's `saved` config. */
export function configDifferences(saved: TrainConfig, requested: TrainConfig): Difference[] {
  const out: Difference[] = [];
  for (const f of RESUME_FIELDS) {
    const [a, b] = [f.get(saved), f.get(requested)];
    // A run recorded before data fingerprints existed cannot be compared on them.
    if (f.option.startsWith('dataDir') && (a === undefined || b === undefined)) continue;
    if (JSON.stringify(a) !== JSON.stringify(b))
      out.push({ option: f.option, old: a, new: b, fixed: !!f.fixed });
  }
  // A setting that changed only because one it follows did is not news to the user: hide it,
  // unless the options given for the two runs say the user set it differently too.
  const changed = new Set(out.map((d) => d.option));
  const given = (o: TrainConfig, k: string) =>
    JSON.stringify((o.options as Record<string, unknown> | undefined)?.[k]);
  return out.filter((d) => {
    const f = RESUME_FIELDS.find((x) => x.option === d.option)!;
    if (!f.follows?.some((s) => changed.has(s))) return true;
    const key = f.given === undefined ? f.option : f.given;
    return (
      key !== null &&
      !!saved.options &&
      !!requested.options &&
      given(saved, key) !== given(requested, key)
    );
  });
}

/** A change made on resume, kept in the run's state so that the run records what it did. */
export interface ConfigChange {
  /** Epochs done and batches done in the current epoch when the change took effect. */
  epoch: number;
  batch: number;
  changes: string[];
  override: boolean;
}

/**
 * The config a resumed run continues with: the run's own, with the new harmless settings
 * (backend and compute variant, recorded as a change; checkpoint frequency) and more epochs; any
 * other difference is refused in one line unless `override`, when the new values win. Returns
 * the change to record, if any.
 */
export function reconcileResume(
  saved: TrainConfig,
  requested: TrainConfig,
  done: { epoch: number; batch: number },
  o: { override?: boolean; out: string },
): { config: TrainConfig; change?: ConfigChange } {
  const diffs = configDifferences(saved, requested);
  const fixed = diffs.filter((d) => d.fixed);
  if (fixed.length > 0) {
    throw optionError(
      (n) =>
        `${o.out} holds a run whose checkpoint was built with other settings: ${fixed.map((d) => describeDifference(d, n)).join(', ')}; these cannot change on resume (start a new run in another ${n('out')} folder, or with ${n('force')})`,
    );
  }
  const least = done.batch > 0 ? done.epoch + 1 : done.epoch; // epochs the run has (partly) trained
  if (requested.epochs < least) {
    throw optionError(
      (n) =>
        `${o.out}: the run has trained ${done.epoch} epoch(s)${done.batch > 0 ? ' and part of the next' : ''}, so ${n('epochs')} must be ≥ ${least} to resume it (got ${requested.epochs})`,
    );
  }
  const shorter = requested.epochs < saved.epochs;
  if (shorter)
    diffs.push({ option: 'epochs', old: saved.epochs, new: requested.epochs, fixed: false });
  if (diffs.length > 0 && !o.override) {
    throw optionError(
      (n) =>
        `${o.out} holds a run made with other settings: ${diffs.map((d) => describeDifference(d, n)).join(', ')} (give the run's values, leave them out to inherit them, or set ${n('override')} to continue with the new ones)`,
    );
  }
  const changes = diffs.map((d) => describeDifference(d));
  if (requested.backend !== saved.backend)
    changes.push(`backend ${saved.backend} → ${requested.backend}`);
  // a run from before the variant was recorded: its backend's of then
  const was = saved.compute ?? legacyCompute(saved.backend);
  if (requested.compute !== undefined && requested.compute !== was)
    changes.push(`compute ${was} → ${requested.compute}`);
  if (requested.epochs > saved.epochs)
    changes.push(`epochs ${saved.epochs} → ${requested.epochs} (extended)`);
  // Harmless settings and a longer run take the new values; with override, everything does.
  const config: TrainConfig = o.override
    ? { ...requested, dataHash: requested.dataHash ?? saved.dataHash }
    : {
        ...saved,
        epochs: requested.epochs,
        backend: requested.backend,
        compute: requested.compute,
        checkpointEvery: requested.checkpointEvery,
        options: requested.options ?? saved.options,
      };
  return {
    config,
    change: changes.length > 0 ? { ...done, changes, override: diffs.length > 0 } : undefined,
  };
}

/** The counts of a config, which may come from an edited state.json: each within util/limits.ts's bounds, as given options are. */
export function checkTrainCounts(c: TrainConfig, source: string): void {
  const count = (name: string, v: unknown, max: number, min = 1) => {
    if (v !== undefined) checkCount(`${source}: ${name}`, v, max, min);
  };
  count('epochs', c.epochs, LIMITS.epochs);
  count('batchSize', c.batchSize, LIMITS.batchSize);
  count('limit', c.limit, LIMITS.images);
  count('evalLimit', c.evalLimit, LIMITS.images);
  count('checkpointEvery', c.checkpointEvery, LIMITS.checkpointEvery, 0);
  count('width', c.width, LIMITS.width);
  count('seed', c.seed, LIMITS.seed, 0);
  count('robustEval.limit', c.robustEval?.limit, LIMITS.images);
  count('robustEval.steps', c.robustEval?.steps, LIMITS.steps);
  count('defense.steps', c.defense?.steps, LIMITS.steps);
  count('defense.noiseSamples', c.defense?.noiseSamples, LIMITS.samples);
}
