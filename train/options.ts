/**
 * Training's rules in one place, for `train()` from code and `robust train` alike: the options a
 * run takes, their defaults (some depend on the defense), the config they resolve to for a data
 * set, and the metadata its checkpoint carries. Errors name options (`epochs`), never flags.
 */
import type * as tf from '@tensorflow/tfjs';
import type { DataSplit } from '../data/dataset.js';
import type { Augment } from '../data/batches.js';
import {
  ADVERSARIAL,
  defenseConfig,
  describeDefense,
  parseDefenses,
  settingApplies,
  type DefenseConfig,
} from '../defenses/defense.js';
import { createModel, zooEntry } from '../models/zoo.js';
import type { ModelMeta } from '../models/model-meta.js';
import { check, checkOption, optionError, renameOptions, RobustError } from '../util/errors.js';
import {
  bool,
  either,
  int,
  isObject,
  leaf,
  num,
  optional,
  str,
  strings,
  type Shape,
} from '../util/fields.js';
import { LIMITS } from '../util/limits.js';
import { parseSchedule, type ScheduleName } from './schedule.js';
import type { EarlyStop, TrainConfig } from './trainer.js';
import type { ModelMode } from '../models/classifier.js';
import { computeVariant } from '../backend/variant.js';

/** What a run is asked to do; every key is optional (see TRAIN_DEFAULTS). */
export interface TrainOptions {
  /** Zoo architecture (`robust models`). */
  model?: string;
  /** Channels of the first stage (default: the architecture's). */
  width?: number;
  /** Data set: a built-in name, or folder:PATH / npz:FILE with a training split. */
  data?: string;
  /** Where built-in data sets live (default $ROBUST_DATA_DIR or ~/.cache/robust/data). */
  dataDir?: string;
  epochs?: number;
  batchSize?: number;
  /** Peak learning rate. */
  lr?: number;
  momentum?: number;
  /** L2 weight decay on kernels. */
  weightDecay?: number;
  /** The weights weight decay applies to: kernels (default) or all (BN and biases too, as torch.optim.SGD(model.parameters())). */
  decay?: 'kernels' | 'all';
  /** Default cosine, or onecycle with fgsm-rs. */
  schedule?: ScheduleName;
  /** Random crop and flip as the data set calls for (CIFAR-style at 32×32: pad 4 + flip; else pad 2). */
  augment?: boolean;
  seed?: number;
  /** Only the first N training images (and test images unless evalLimit). */
  limit?: number;
  /** Test accuracy on the first N test images. */
  evalLimit?: number;
  /** Also checkpoint every N batches (0: epoch ends only). */
  checkpointEvery?: number;
  /** Defenses, as `'pgd,clip'` or `['pgd', 'clip']` (adv = pgd). */
  defense?: string | string[];
  /** Adversarial training budget (Linf pixels); also the robust evaluation's. */
  eps?: number;
  /** Adversarial step size (default 2/255; fgsm-rs 1.25·eps). */
  alpha?: number;
  /** Attack steps of pgd (default 7) and trades (default 10). */
  advSteps?: number;
  advRatio?: number;
  /** The mode FGSM-RS and PGD attack the model in during training: inference (default) or train (batch statistics, as Wong et al.'s code). */
  advMode?: ModelMode;
  beta?: number;
  clipNorm?: number;
  clipValue?: number;
  noiseStd?: number;
  noiseSamples?: number;
  dropout?: number;
  blockDropout?: number;
  /** PGD robust accuracy each epoch on the first N test images (default 200 with adversarial defenses, else 0). */
  robustEval?: number;
  robustEvalSteps?: number;
  /**
   * Stop when robust accuracy collapses (fgsm-rs only): 'robust-eval' (or true, the default) when
   * the robust evaluation falls below half its best (the best epoch stays in best/);
   * 'train-batch' by Wong et al.'s check, on training images only (see EarlyStop); false never.
   */
  earlyStop?: boolean | EarlyStopRule;
  // This invocation only: never recorded, never inherited on resume.
  /** Run folder (default runs/<model>-<data>). */
  out?: string;
  /** Continue the run in `out` from its checkpoint; options left out are the run's own. */
  resume?: boolean;
  /** With resume: continue with options that differ from the run's (recorded in its state). */
  override?: boolean;
  /** Start a new run in `out` even if it holds a run or other files (the old run's files go). */
  force?: boolean;
  /** Backend to start if none is running (initBackend's names). */
  backend?: string;
  threads?: number;
  /** No progress output. */
  quiet?: boolean;
}

/** The early-stop rules a run can go by (TrainOptions.earlyStop). */
export const EARLY_STOP_RULES = ['robust-eval', 'train-batch'] as const;
export type EarlyStopRule = (typeof EARLY_STOP_RULES)[number];

/** The defaults of options whose default does not depend on others. */
export const TRAIN_DEFAULTS = {
  model: 'resnet20',
  data: 'cifar10',
  epochs: 30,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'cosine',
  augment: true,
  seed: 0,
  checkpointEvery: 50,
  defense: 'none',
  eps: 8 / 255,
  advRatio: 1,
  beta: 6,
  noiseSamples: 1,
  robustEvalSteps: 10,
  earlyStop: true,
} as const satisfies TrainOptions;

/** Options that do not shape a run: never inherited on resume, free to differ. */
export const PER_INVOCATION: ReadonlySet<string> = new Set([
  'out',
  'resume',
  'override',
  'force',
  'backend',
  'threads',
  'quiet',
]);

const count = (min: number, max: number) => optional(int(min, max));
const OPTIONS: Record<keyof TrainOptions, Shape[string]> = {
  model: optional(str),
  width: count(1, LIMITS.width),
  data: optional(str),
  dataDir: optional(str),
  epochs: count(1, LIMITS.epochs),
  batchSize: count(1, LIMITS.batchSize),
  lr: optional(num(0)),
  momentum: optional(num(0, 1)),
  weightDecay: optional(num(0)),
  decay: optional(leaf((v) => v === 'kernels' || v === 'all', 'kernels or all')),
  schedule: optional(str),
  augment: optional(bool),
  seed: count(0, LIMITS.seed),
  limit: count(1, LIMITS.images),
  evalLimit: count(1, LIMITS.images),
  checkpointEvery: count(0, LIMITS.checkpointEvery),
  defense: optional(either(str, strings)),
  eps: optional(num(0)),
  alpha: optional(num(0)),
  advSteps: count(1, LIMITS.steps),
  advRatio: optional(num(0, 1)),
  advMode: optional(leaf((v) => v === 'inference' || v === 'train', 'inference or train')),
  beta: optional(num(0)),
  clipNorm: optional(num(0)),
  clipValue: optional(num(0)),
  noiseStd: optional(num(0)),
  noiseSamples: count(1, LIMITS.samples),
  dropout: optional(num(0, 0.99)),
  blockDropout: optional(num(0, 0.99)),
  robustEval: count(0, LIMITS.images),
  robustEvalSteps: count(1, LIMITS.steps),
  earlyStop: optional(
    leaf(
      (v) => typeof v === 'boolean' || (EARLY_STOP_RULES as readonly unknown[]).includes(v),
      `${EARLY_STOP_RULES.join(' or ')} (true: robust-eval; false: off)`,
    ),
  ),
  out: optional(str),
  resume: optional(bool),
  override: optional(bool),
  force: optional(bool),
  backend: optional(str),
  threads: count(1, LIMITS.threads),
  quiet: optional(bool),
};

/** Every option's name (TrainOptions' keys). */
export const TRAIN_OPTIONS = Object.keys(OPTIONS) as (keyof TrainOptions)[];

/** Checks each option's type and range (`source` prefixes the one-line error: where they came from). */
export function checkTrainOptions(o: unknown, source = ''): asserts o is TrainOptions {
  const at = source ? `${source}: ` : '';
  if (!isObject(o)) throw new RobustError(`${at}the training options must be an object`);
  const unknown = Object.keys(o).filter((k) => !Object.hasOwn(OPTIONS, k));
  check(
    unknown.length === 0,
    () =>
      `${at}unknown option ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${Object.keys(OPTIONS).join(', ')})`,
  );
  // options given in code name their key (the CLI says its flag); a saved run's, the file's key
  for (const [k, c] of Object.entries(OPTIONS)) {
    const why = c(o[k]);
    if (why)
      throw source ? new RobustError(`${at}${k} ${why}`) : optionError((n) => `${n(k)} ${why}`);
  }
}

/**
 * The options a run goes by: those given, over those the resumed run was given (`saved`, read
 * from its state: checked as given ones are), without the per-invocation ones. Recorded in the
 * run's config, so that a resume can inherit what it leaves out.
 */
export function runOptions(given: TrainOptions, saved?: unknown, savedSource = ''): TrainOptions {
  checkTrainOptions(given);
  const inherited: Record<string, unknown> = {};
  if (saved !== undefined) {
    checkTrainOptions(saved, savedSource);
    Object.assign(inherited, saved);
  }
  const out: Record<string, unknown> = { ...inherited, ...given };
  for (const k of Object.keys(out))
    if (PER_INVOCATION.has(k) || out[k] === undefined) delete out[k];
  // Another defense given leaves behind the settings of the run's own that it does not take (the
  // resume then names the defense's change), rather than refusing them as if they were given.
  if (given.defense !== undefined)
    for (const k of Object.keys(inherited))
      if (!(k in given) && !inheritedSettingApplies(k, out as TrainOptions)) delete out[k];
  return out as TrainOptions;
}

/** Whether option `k` still does something under the defenses of `o` (eps also with a robust evaluation). */
function inheritedSettingApplies(k: string, o: TrainOptions): boolean {
  const names = defenseNames(o);
  if (k === 'earlyStop') return names.includes('fgsm-rs');
  if (k === 'eps' && (o.robustEval ?? 0) > 0) return true;
  // the defense's settings under their option names (DefenseConfig's steps is advSteps)
  return settingApplies(k === 'advSteps' ? 'steps' : k, names);
}

/** The defenses `o` names, parsed (adv = pgd; an unknown or empty entry refused in one line). */
function defenseNames(o: TrainOptions): DefenseConfig['names'] {
  const list = o.defense ?? TRAIN_DEFAULTS.defense;
  return Array.isArray(list) && list.length === 0
    ? []
    : parseDefenses(Array.isArray(list) ? list.join(',') : list);
}

/** Augmentation by data set: CIFAR's random crop (pad 4) and flip at 32×32, a smaller crop and no flip otherwise (digits and clothes have a side). */
export function augmentFor(data: Pick<DataSplit, 'train'>, on: boolean): Augment {
  if (!on) return { cropPad: 0, flip: false };
  const isCifar = data.train.height === 32;
  return { cropPad: isCifar ? 4 : 2, flip: isCifar };
}

/** The defense settings of `o`: the names parsed, every setting checked in one line. */
export function trainDefense(o: TrainOptions): DefenseConfig {
  const names = defenseNames(o);
  // Only the settings given: one given for a defense not in the list is refused, not ignored.
  // Unset ones take defenseConfig's defaults, which are TRAIN_DEFAULTS'. eps is also the robust
  // evaluation's budget, which a run without adversarial defense has only when asked for.
  // defenseConfig's steps is the run's advSteps.
  return renameOptions({ steps: 'advSteps' }, () =>
    defenseConfig(
      names,
      {
        eps: o.eps,
        alpha: o.alpha,
        steps: o.advSteps,
        advRatio: o.advRatio,
        advMode: o.advMode,
        beta: o.beta,
        clipNorm: o.clipNorm,
        clipValue: o.clipValue,
        noiseStd: o.noiseStd,
        noiseSamples: o.noiseSamples,
        dropout: o.dropout,
        blockDropout: o.blockDropout,
      },
      (o.robustEval ?? 0) > 0 ? ['eps'] : [],
    ),
  );
}

/**
 * The settings that need more than a type check: the model, the defenses and their combination,
 * the schedule (FGSM-RS is defined with a one-cycle learning rate, Wong et al.; one given wins).
 * Cheap, so a run checks them before it loads anything.
 */
export function runSettings(o: TrainOptions): {
  model: string;
  defense: DefenseConfig;
  schedule: ScheduleName;
} {
  checkTrainOptions(o);
  const model = o.model ?? TRAIN_DEFAULTS.model;
  zooEntry(model);
  const defense = trainDefense(o);
  const adversarial = defense.names.some((n) => ADVERSARIAL.has(n));
  checkOption(
    o.robustEvalSteps === undefined || (o.robustEval ?? (adversarial ? 200 : 0)) > 0,
    (n) =>
      `${n('robustEvalSteps')} is set but no robust evaluation runs (${n('robustEval')} is ${o.robustEval ?? 0}${adversarial ? '' : ' without an adversarial defense'})`,
  );
  // catastrophic overfitting is FGSM-RS's failure: only there is there a stop to turn off
  checkOption(
    o.earlyStop === undefined || defense.names.includes('fgsm-rs'),
    (n) => `${n('earlyStop')} applies only with ${n('defense')} fgsm-rs`,
  );
  checkOption(
    !(o.earlyStop === 'robust-eval' && o.robustEval === 0),
    (n) =>
      `${n('earlyStop')} robust-eval watches the robust evaluation, but ${n('robustEval')} is 0: give it images, or use train-batch`,
  );
  const schedule = parseSchedule(
    o.schedule ?? (defense.names.includes('fgsm-rs') ? 'onecycle' : TRAIN_DEFAULTS.schedule),
  );
  return { model, defense, schedule };
}

/** The config's form of an early-stop option: true for the robust-evaluation rule (as runs recorded it before there were two). */
const earlyStopOf = (o: boolean | EarlyStopRule): EarlyStop =>
  o === 'train-batch' ? 'train-batch' : o !== false;

/**
 * The full config of a run from its options (as `runOptions` gives them), the data it trains on
 * (already loaded with `limit` / `evalLimit`) and the backend's name, with the compute variant
 * that runs now: what `train()` runs and records in the run's state.
 */
export function trainConfig(o: TrainOptions, data: DataSplit, backend: string): TrainConfig {
  const d = TRAIN_DEFAULTS;
  const { model, defense, schedule } = runSettings(o);
  const names = defense.names;
  const adversarial = names.some((n) => ADVERSARIAL.has(n));
  const robustEval = o.robustEval ?? (adversarial ? 200 : 0);
  const eps = o.eps ?? d.eps;
  return {
    model,
    width: o.width,
    data: data.name,
    epochs: o.epochs ?? d.epochs,
    batchSize: o.batchSize ?? d.batchSize,
    lr: o.lr ?? d.lr,
    momentum: o.momentum ?? d.momentum,
    weightDecay: o.weightDecay ?? d.weightDecay,
    // kernels is the default, recorded as absent (runs from before the setting match)
    ...(o.decay === 'all' ? { decay: 'all' as const } : {}),
    schedule,
    augment: augmentFor(data, o.augment ?? d.augment),
    seed: o.seed ?? d.seed,
    limit: o.limit,
    evalLimit: o.evalLimit,
    checkpointEvery: o.checkpointEvery ?? d.checkpointEvery,
    backend,
    compute: computeVariant(),
    ...(names.length > 0 ? { defense } : {}),
    ...(robustEval > 0
      ? { robustEval: { limit: robustEval, eps, steps: o.robustEvalSteps ?? d.robustEvalSteps } }
      : {}),
    // catastrophic overfitting is FGSM-RS's failure: only there does a collapse stop the run
    // the robust-evaluation rule by default, which without a robust evaluation has nothing to watch
    earlyStop:
      names.includes('fgsm-rs') && !(o.earlyStop === undefined && robustEval === 0)
        ? earlyStopOf(o.earlyStop ?? d.earlyStop)
        : false,
    options: runOptions(o),
  };
}

/** What a run's checkpoint says about its model (`userDefinedMetadata.robust`; read back by modelMeta). */
export function trainMetadata(config: TrainConfig, data: Pick<DataSplit, 'name' | 'classes'>) {
  const meta: ModelMeta = {
    model: config.model,
    width: config.width ?? zooEntry(config.model).spec.width,
    data: data.name,
    classes: data.classes,
    defense: describeDefense(config.defense),
    ...(config.defense?.names.length ? { defenseConfig: config.defense } : {}),
  };
  return JSON.parse(JSON.stringify(meta)) as ModelMeta; // plain JSON: tfjs rejects undefined values
}

/** A new model for the run, seeded and with its metadata set. */
export function freshModel(config: TrainConfig, data: DataSplit): tf.LayersModel {
  const dropout = config.defense?.names.includes('dropout');
  const m = createModel(config.model, {
    inputShape: [data.train.height, data.train.width, data.train.channels],
    numClasses: data.classes.length,
    mean: data.mean,
    std: data.std,
    width: config.width,
    seed: config.seed,
    dropout: dropout ? config.defense?.dropout : undefined,
    blockDropout: dropout ? config.defense?.blockDropout : undefined,
  });
  m.setUserDefinedMetadata({ robust: trainMetadata(config, data) });
  return m;
}
