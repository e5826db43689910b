/**
 * `train(options)`: a whole training run from options, as `robust train` does it (the CLI only
 * parses flags into these options): the run folder claimed and checked, a resumed run's options
 * inherited, the backend and data set up, the config resolved, then the loop.
 */
import path from 'node:path';
import { initBackend, type BackendInfo } from '../backend/index.js';
import { dataSlug, loadData } from '../data/index.js';
import type { DataSplit } from '../data/dataset.js';
import { checkOption } from '../util/errors.js';
import { ensureWritableDir, outputFolder } from '../util/dirs.js';
import type { EpochLog } from './epoch-log.js';
import {
  checkTrainOptions,
  freshModel,
  runOptions,
  runSettings,
  TRAIN_DEFAULTS,
  trainConfig,
  type TrainOptions,
} from './options.js';
import type { ConfigChange } from './run-config.js';
import { checkRunFolder, holdRunFolder, readRunState, stateFile } from './run-folder.js';
import { planResume, trainModel, type TrainConfig, type TrainResult } from './trainer.js';

/** What a run is about to do, once everything is checked and before the first batch. */
export interface TrainStart {
  out: string;
  config: TrainConfig;
  data: DataSplit;
  backend: BackendInfo;
  /** A resumed run: the change of settings it continues with, if any (`config` is then the run's own). */
  resumed?: { change?: ConfigChange };
}

export interface TrainHooks {
  /** Called once before training starts (the CLI prints its banner here). */
  onStart?: (start: TrainStart) => void;
  onEpoch?: (e: EpochLog) => void;
  onCheckpoint?: () => void;
  /** Polled after each batch: true stops the run after a checkpoint (`interrupted`). */
  shouldStop?: () => boolean;
  /** Notes on what the run does (a resume with changes, data conversions); default: stderr. */
  note?: (line: string) => void;
}

export interface TrainRun extends TrainResult {
  /** The run folder. */
  out: string;
}

/** The run folder `o` names, or runs/<model>-<data>. */
export function runFolder(o: TrainOptions): string {
  return outputFolder(
    'out',
    o.out ??
      path.join(
        'runs',
        `${o.model ?? TRAIN_DEFAULTS.model}-${dataSlug(o.data ?? TRAIN_DEFAULTS.data)}`,
      ),
  );
}

/**
 * Trains a zoo model as `robust train` does: same options (TrainOptions' names), same defaults,
 * same run folder, checkpoints and logs. Uses the backend `initBackend` started, else starts
 * `options.backend` (default: the fastest installed). Refuses anything unexpected in one line.
 */
export async function train(options: TrainOptions, hooks: TrainHooks = {}): Promise<TrainRun> {
  checkTrainOptions(options);
  checkOption(
    !options.override || options.resume,
    (n) => `${n('override')} only applies with ${n('resume')}`,
  );
  // a new run's options are all given: check them before the folder is touched
  if (!options.resume) runSettings(options);
  const note = hooks.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = runFolder(options);
  // Before any work: a new run never writes over another run or other files, nor shares its folder with a running one.
  const release = holdRunFolder(out);
  try {
    const resuming = checkRunFolder(out, options);
    const saved = resuming ? readRunState<{ config: TrainConfig }>(out)?.config.options : undefined;
    const o = runOptions(options, saved, `${stateFile(out)}: options`);
    if (options.resume) runSettings(o);
    ensureWritableDir(out);
    const backend = await initBackend({ backend: options.backend, threads: options.threads });
    const data = await loadData(o.data ?? TRAIN_DEFAULTS.data, {
      dataDir: o.dataDir,
      limit: o.limit,
      testLimit: o.evalLimit ?? o.limit,
      needTrain: true,
      note,
    });
    const config = trainConfig(o, data, backend.name);
    const flags = { resume: options.resume, override: options.override, force: options.force };
    // Refuses a different configuration before onStart, which shows what will run.
    const plan = planResume(out, config, data, flags);
    if (options.resume && !plan) note(`no checkpoint in ${out} to resume: starting a new run`);
    if (plan?.change)
      note(
        `resuming with ${plan.change.changes.join(', ')}${plan.change.override ? " (override; recorded in the run's state.json)" : ''}`,
      );
    hooks.onStart?.({
      out,
      config: plan?.config ?? config,
      data,
      backend,
      ...(plan ? { resumed: { change: plan.change } } : {}),
    });
    const result = await trainModel(() => freshModel(config, data), data, config, out, {
      ...flags,
      quiet: options.quiet,
      onEpoch: hooks.onEpoch,
      onCheckpoint: hooks.onCheckpoint,
      shouldStop: hooks.shouldStop,
    });
    return { ...result, out };
  } finally {
    release();
  }
}
