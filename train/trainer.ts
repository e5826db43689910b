/**
 * The training loop: SGD with momentum on augmented batches, a learning-rate schedule,
 * test accuracy each epoch, a per-epoch log (CSV + JSON), atomic checkpoints and resume.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { stringify } from 'csv-stringify/sync';
import { dataFingerprint, take, type DataSplit } from '../data/dataset.js';
import { epochBatches, makeBatch, NO_AUGMENT, type Augment } from '../data/batches.js';
import { accuracy } from '../eval/accuracy.js';
import { loadModel, readOptimizerState, saveCheckpoint } from '../models/checkpoint.js';
import { optionError, RobustError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Sgd } from './sgd.js';
import { variableGrads } from '../backend/ops/gradients.js';
import { seedDropout } from '../models/seeded-dropout.js';
import { learningRate, type ScheduleName } from './schedule.js';
import { Progress } from './progress.js';
import type { EpochLog } from './epoch-log.js';
import { describeDefense, type DefenseConfig } from '../defenses/defense.js';
import { DefendedStep } from '../defenses/training-step.js';
import { pgd } from '../attacks/pgd.js';
import { foldedClassifier } from '../models/fold.js';
import { layersClassifier } from '../models/classifier.js';
import { runAttack } from '../eval/attack-run.js';
import { batchRobustness } from './early-stop.js';
import { checkTrainCounts, reconcileResume, type ConfigChange } from './run-config.js';
import { checkRunFolder, clearRun, holdRunFolder, readRunState, stateFile } from './run-folder.js';
import type { TrainOptions } from './options.js';
import { computeVariant } from '../backend/variant.js';

/**
 * How a run watches for catastrophic overfitting (FGSM-RS's failure), and stops:
 *  - true: the robust evaluation (PGD on the first robustEval.limit test images) falls below half
 *    its best; best/ holds the epoch where it was best;
 *  - 'train-batch': Wong et al.'s check (their train_fgsm.py --early-stop): after each epoch,
 *    PGD-5 (step 2/255, random start) on the epoch's first training batch (its images without
 *    augmentation), in the training attack's mode; a drop of more than 20 points from the epoch
 *    before stops the run, and best/ holds that epoch before — chosen without a test image;
 *  - false: never.
 */
export type EarlyStop = boolean | 'train-batch';

export interface TrainConfig {
  model: string;
  width?: number;
  data: string;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** 'all': weight decay on every weight (PyTorch's SGD over model.parameters()); absent: kernels only. */
  decay?: 'all';
  schedule: ScheduleName;
  augment: Augment;
  seed: number;
  limit?: number;
  evalLimit?: number;
  /** Save a checkpoint every this many batches within an epoch (0 = at epoch ends only). */
  checkpointEvery: number;
  backend: string;
  /** The backend's compute variant (backend/variant.ts); absent in runs from before it was recorded. */
  compute?: string;
  /** Defenses applied during training (adversarial examples, noise, clipping, dropout). */
  defense?: DefenseConfig;
  /** Robust accuracy each epoch: PGD with these settings on the first `limit` test images. */
  robustEval?: { limit: number; eps: number; steps: number };
  /** Stop when robust accuracy collapses (catastrophic overfitting): see EarlyStop. */
  earlyStop?: EarlyStop;
  /** sha-256 of the train and test images and labels (train() sets it), so a resume can tell other data. */
  dataHash?: string;
  /** The options given for the run (train() or robust train), so a resume can inherit those not given again. */
  options?: TrainOptions;
}

/** Everything needed to continue a run exactly where its checkpoint was taken. */
interface RunState {
  config: TrainConfig;
  epoch: number; // epochs fully done
  batch: number; // batches done in the current epoch
  augRng: number;
  partial: { loss: number; correct: number; seen: number; seconds: number };
  log: EpochLog[];
  /** Best robust accuracy so far (its model is in best/ unless earlyStop is 'train-batch'). */
  bestRobust?: number;
  /** earlyStop 'train-batch': the last epoch's accuracy in the check (its model is in best/). */
  batchRobust?: number;
  /** Settings changed on resume (more epochs, or override), in order. */
  changes?: ConfigChange[];
  /** Set when the run stopped itself on catastrophic overfitting: a resume would train the collapsed model on. */
  stopped?: { epoch: number; reason: string };
}

interface ResumeOptions {
  resume?: boolean;
  /** Continue a run with settings that differ from its own (recorded in its state). */
  override?: boolean;
  /** Start over in a folder that holds a run or other files (the old run's files are removed). */
  force?: boolean;
}

/** The run to continue in `out` and the config it continues with, or null for a new run; refuses a different configuration in one line. */
export function planResume(
  out: string,
  requested: TrainConfig,
  data: DataSplit,
  o: ResumeOptions,
): { saved: RunState; config: TrainConfig; change?: ConfigChange } | null {
  if (!checkRunFolder(out, o)) return null;
  const saved = readRunState<RunState>(out)!;
  checkTrainCounts(saved.config, stateFile(out));
  if (saved.stopped && !o.override) {
    const { epoch, reason } = saved.stopped;
    throw optionError(
      (n) =>
        `${out}: the run stopped itself after epoch ${epoch} (${reason}) and ${path.join(out, 'best')} holds the epoch it keeps: there is nothing to resume (${n('override')} trains the stopped model on; ${n('force')} starts over)`,
    );
  }
  const withData = { ...requested, dataHash: dataFingerprint(data.train, data.test) };
  return {
    saved,
    ...reconcileResume(
      saved.config,
      withData,
      { epoch: saved.epoch, batch: saved.batch },
      { override: o.override, out },
    ),
  };
}

/** The first weight or optimizer buffer holding NaN or ±Inf, if any. */
function nonFinite(model: tf.LayersModel, buffers: Float32Array[]): string | undefined {
  const flags = tf.tidy(() =>
    tf.stack(model.weights.map((w) => w.read().isFinite().all())).dataSync(),
  );
  const i = flags.findIndex((f) => !f);
  if (i >= 0) return model.weights[i].name;
  const j = buffers.findIndex((b) => !b.every(Number.isFinite));
  return j >= 0 ? `the momentum of ${model.trainableWeights[j].name}` : undefined;
}

/** Dropout's stream within a batch's seed (the defenses' random starts use the seed itself). */
const DROPOUT_STREAM = 0x2f6b1a53;
/** The early-stop check's random start within the epoch's seed. */
const CHECK_STREAM = 0x6c8e9cf5;

/** A seed per (run, epoch, batch), so a resumed batch draws the same random starts. */
function batchSeed(seed: number, epoch: number, batch: number): number {
  return (
    (Math.imul(seed + 1, 0x9e3779b1) ^
      Math.imul(epoch + 1, 0x85ebca6b) ^
      Math.imul(batch + 1, 0xc2b2ae35)) >>>
    1
  );
}

export interface TrainResult {
  model: tf.LayersModel;
  log: EpochLog[];
  /** True when a stop was requested (SIGINT) and the run ended early after a checkpoint. */
  interrupted: boolean;
  /** The config the run went by, as in its state.json (a resumed run's own, data fingerprint included). */
  config: TrainConfig;
}

function writeLogs(out: string, log: EpochLog[]): void {
  writeFileAtomic(path.join(out, 'log.json'), JSON.stringify(log, null, 2));
  writeFileAtomic(path.join(out, 'log.csv'), stringify(log, { header: true }));
}

/**
 * The loop under `train()`: trains the model `freshModel` makes (or the checkpoint in
 * `out/checkpoint` when `resume`) on `data` with a config already resolved (`trainConfig`).
 * Returns the trained model and the per-epoch log; writes checkpoints and logs into `out`.
 */
export async function trainModel(
  freshModel: () => tf.LayersModel,
  data: DataSplit,
  requested: TrainConfig,
  out: string,
  opts: ResumeOptions & {
    quiet?: boolean;
    onEpoch?: (e: EpochLog) => void;
    onCheckpoint?: () => void;
    shouldStop?: () => boolean;
  } = {},
): Promise<TrainResult> {
  const ckpt = path.join(out, 'checkpoint');
  checkTrainCounts(requested, 'the training config');
  // what computes this run's numbers now, unless the caller said (trainConfig does)
  requested = { ...requested, compute: requested.compute ?? computeVariant() };
  const release = holdRunFolder(out);
  try {
    return await trainIn(freshModel, data, requested, out, ckpt, opts);
  } finally {
    release();
  }
}

async function trainIn(
  freshModel: () => tf.LayersModel,
  data: DataSplit,
  requested: TrainConfig,
  out: string,
  ckpt: string,
  opts: ResumeOptions & {
    quiet?: boolean;
    onEpoch?: (e: EpochLog) => void;
    onCheckpoint?: () => void;
    shouldStop?: () => boolean;
  },
): Promise<TrainResult> {
  const plan = planResume(out, requested, data, opts);
  if (opts.force) clearRun(out);
  let config: TrainConfig = plan?.config ?? {
    ...requested,
    dataHash: dataFingerprint(data.train, data.test),
  };
  let state: RunState = {
    config,
    epoch: 0,
    batch: 0,
    augRng: new Rng(config.seed ^ 0x5bd1e995).state,
    partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
    log: [],
  };
  let model: tf.LayersModel;
  const saved = plan?.saved;
  if (plan && saved) {
    model = await loadModel(ckpt);
    config = plan.config;
    state = {
      ...saved,
      config,
      changes: plan.change ? [...(saved.changes ?? []), plan.change] : saved.changes,
    };
    if (state.stopped) {
      // override: the stopped run goes on, and says so in its record
      const { epoch, reason } = state.stopped;
      state.changes = [
        ...(state.changes ?? []),
        {
          epoch: state.epoch,
          batch: state.batch,
          changes: [`continued after its stop at epoch ${epoch} (${reason})`],
          override: true,
        },
      ];
      delete state.stopped;
    }
    // The logs may lag the checkpoint (a kill or a full disk between the two writes): bring them level.
    if (state.log.length > 0) writeLogs(out, state.log);
    if (plan.change?.override && saved.config.earlyStop !== config.earlyStop) {
      // another rule keeps best/ by another measure: its watch starts over, the next epoch writes best/
      delete state.bestRobust;
      delete state.batchRobust;
    }
    if (plan.change?.override) {
      // The checkpoint's metadata describes the defense users of the model meet (e.g. its inference noise): the new one.
      const meta = (model.getUserDefinedMetadata() as { robust?: object } | undefined)?.robust;
      if (meta)
        model.setUserDefinedMetadata({
          robust: JSON.parse(
            JSON.stringify({
              ...meta,
              defense: describeDefense(config.defense),
              defenseConfig: config.defense,
            }),
          ),
        });
      // A batch index means other images under another batch size or data: continue at the same share of the epoch.
      if (
        state.batch > 0 &&
        (saved.config.batchSize !== config.batchSize || saved.config.dataHash !== config.dataHash)
      ) {
        state.batch = Math.min(
          Math.floor(state.partial.seen / config.batchSize),
          Math.ceil(data.train.count / config.batchSize),
        );
      }
    }
  } else {
    model = freshModel();
  }
  const vars = model.trainableWeights;
  const sgd = new Sgd(vars, {
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    decay: config.decay ?? 'kernels',
  });
  if (saved) {
    const buffers = readOptimizerState(
      ckpt,
      vars.map((v) => v.shape as number[]),
    );
    if (buffers) sgd.setState(buffers);
  }
  const set = data.train;
  const numClasses = data.classes.length;
  const perEpoch = Math.ceil(set.count / config.batchSize);
  const total = perEpoch * config.epochs;
  const testSet = take(data.test, config.evalLimit);
  const progress = new Progress(!!opts.quiet);
  const tfVars = vars.map((v) => v.read() as tf.Variable);
  const step = new DefendedStep(model, numClasses, config.defense);
  const robustSet = config.robustEval ? take(data.test, config.robustEval.limit) : undefined;

  // A diverged run stops with the last good checkpoint kept: nothing non-finite is ever written over it.
  const diverged = (what: string, epoch: number, batch: number) =>
    new RobustError(
      `training diverged: ${what} at epoch ${epoch + 1}, batch ${batch} (lower lr or weightDecay, or clip gradients with defense clip); ${fs.existsSync(stateFile(out)) ? `the last good checkpoint is kept in ${ckpt}` : 'no checkpoint was written'}`,
    );
  const checkFinite = (epoch: number, batch: number, buffers: Float32Array[] = sgd.state()) => {
    const bad = nonFinite(model, buffers);
    if (bad) throw diverged(`${bad} became NaN or infinite`, epoch, batch);
  };
  const checkpoint = async () => {
    const optimizer = sgd.state();
    checkFinite(state.epoch, state.batch, optimizer);
    await saveCheckpoint(ckpt, model, { state, optimizer });
    opts.onCheckpoint?.();
  };

  for (let epoch = state.epoch; epoch < config.epochs; epoch++) {
    // The order of an epoch depends only on (seed, epoch), so a resumed epoch replays it.
    const batches = epochBatches(
      set.count,
      config.batchSize,
      new Rng(config.seed + 7919 * (epoch + 1)),
    );
    const augRng = Rng.fromState(state.augRng);
    progress.startEpoch(epoch + 1, config.epochs, batches.length, state.batch, config.batchSize);
    let lr = 0;
    for (let b = state.batch; b < batches.length; b++) {
      const t0 = performance.now();
      lr = learningRate(config.schedule, config.lr, (epoch * perEpoch + b) / total);
      const batch = makeBatch(set, batches[b], config.augment, augRng);
      // dropout masks from this batch's seed: a resumed batch draws the same ones
      seedDropout(batchSeed(config.seed, epoch, b) ^ DROPOUT_STREAM);
      const prepared = await step.prepare(batch.x, batch.y, batchSeed(config.seed, epoch, b));
      let correct: tf.Scalar | undefined;
      const { value, grads } = variableGrads(() => {
        const { loss, logits } = step.loss(prepared, batch.y);
        correct = tf.keep(logits.argMax(1).cast('int32').equal(batch.y).sum() as tf.Scalar);
        return loss;
      }, tfVars);
      const update = step.gradients(grads);
      sgd.step(update, lr);
      seedDropout(null);
      const loss = value.dataSync()[0];
      const hits = correct!.dataSync()[0];
      tf.dispose([
        value,
        correct!,
        batch.x,
        batch.y,
        prepared.inputs,
        prepared.adversarial,
        ...Object.values(update),
      ]);
      if (!Number.isFinite(loss)) throw diverged(`loss ${loss}`, epoch, b + 1);
      const p = state.partial;
      p.loss += loss * batch.size;
      p.correct += hits;
      p.seen += batch.size;
      p.seconds += (performance.now() - t0) / 1000;
      state.batch = b + 1;
      state.augRng = augRng.state;
      progress.batch(b + 1, {
        loss: p.loss / p.seen,
        acc: p.correct / p.seen,
        imgPerS: p.seen / p.seconds,
        lr,
      });
      await new Promise((r) => setImmediate(r)); // let signals (Ctrl-C) and I/O through
      if (b + 1 < batches.length && opts.shouldStop?.()) {
        await checkpoint();
        sgd.dispose();
        step.dispose();
        return { model, log: state.log, interrupted: true, config };
      }
      if (
        config.checkpointEvery > 0 &&
        (b + 1) % config.checkpointEvery === 0 &&
        b + 1 < batches.length
      )
        await checkpoint();
    }
    checkFinite(epoch, batches.length); // before evaluating: attacks on a NaN model fail in confusing ways
    const testAcc = accuracy(model, testSet);
    const p = state.partial;
    const entry: EpochLog = {
      epoch: epoch + 1,
      lr,
      train_loss: p.loss / p.seen,
      train_acc: p.correct / p.seen,
      test_acc: testAcc,
      seconds: p.seconds,
      img_per_s: p.seen / p.seconds,
    };
    let stopEarly = false;
    if (config.robustEval && robustSet) {
      const r = config.robustEval;
      const target = foldedClassifier(model) ?? layersClassifier(model); // inference mode: the folded copy is the same function
      const attack = pgd(target, { eps: r.eps, steps: r.steps, seed: 0 });
      entry.robust_acc = (
        await runAttack(target, attack, robustSet, { quiet: true })
      ).stats.robust_acc;
      target.dispose?.();
      const best = state.bestRobust ?? -1;
      if (best >= 0.1 && entry.robust_acc < 0.5 * best) {
        entry.flag = 'catastrophic overfitting';
        stopEarly = config.earlyStop === true;
      }
      if (entry.robust_acc > best) state.bestRobust = entry.robust_acc;
      if (entry.robust_acc > best && config.earlyStop !== 'train-batch') {
        await saveCheckpoint(path.join(out, 'best'), model, {
          state: { epoch: epoch + 1, robust_acc: entry.robust_acc, test_acc: testAcc },
        });
      }
    }
    if (config.earlyStop === 'train-batch') {
      const check = makeBatch(set, batches[0], NO_AUGMENT, new Rng(0));
      const seed = batchSeed(config.seed, epoch, 0) ^ CHECK_STREAM;
      seedDropout(seed ^ DROPOUT_STREAM); // a train-mode check draws its dropout masks from the epoch too
      entry.batch_robust_acc = await batchRobustness(model, check, config.defense!, { seed });
      seedDropout(null);
      tf.dispose([check.x, check.y]);
      // Wong et al.: a fall of more than 20 points from the epoch before is the collapse (exactly 20 is not)
      if (entry.batch_robust_acc - (state.batchRobust ?? 0) < -0.2 - 1e-9) {
        entry.flag = 'catastrophic overfitting';
        stopEarly = true;
      } else {
        state.batchRobust = entry.batch_robust_acc;
        await saveCheckpoint(path.join(out, 'best'), model, {
          state: { epoch: epoch + 1, batch_robust_acc: entry.batch_robust_acc, test_acc: testAcc },
        });
      }
    }
    if (stopEarly)
      state.stopped = {
        epoch: epoch + 1,
        reason: `catastrophic overfitting: ${config.earlyStop === 'train-batch' ? 'the check on a training batch fell by over 20 points' : 'robust accuracy fell below half its best'}`,
      };
    state.log.push(entry);
    state.epoch = epoch + 1;
    state.batch = 0;
    state.partial = { loss: 0, correct: 0, seen: 0, seconds: 0 };
    progress.endEpoch(entry);
    await checkpoint();
    writeLogs(out, state.log);
    opts.onEpoch?.(entry);
    if (stopEarly) {
      process.stderr.write(
        `robust accuracy collapsed (catastrophic overfitting): stopping; ${config.earlyStop === 'train-batch' ? 'the epoch before' : 'the best epoch'} is in ${path.join(out, 'best')}\n`,
      );
      break;
    }
  }
  sgd.dispose();
  step.dispose();
  return { model, log: state.log, interrupted: false, config };
}
