/** robust: adversarial robustness for TensorFlow.js. The public API, by area. */
export * as attacks from './attacks/index.js';
export * as evaluation from './eval/index.js';
export {
  initBackend,
  describeBackend,
  type BackendInfo,
  type BackendName,
  type BackendOptions,
} from './backend/index.js';
export {
  loadData,
  loadData as loadImages,
  prepareData,
  parseDataSpec,
  DATASETS,
  type DataSpec,
  type LoadOptions,
} from './data/index.js';
export { fitImages, type FitInfo, type FitTarget } from './data/fit.js';
export { createModel, ZOO } from './models/zoo.js';
export { loadModel, modelFingerprint, saveCheckpoint } from './models/checkpoint.js';
export { loadPretrained, pretrainedEntries, type PretrainedEntry } from './models/pretrained.js';
export { foldedClassifier } from './models/fold.js';
export {
  asClassifier,
  layersClassifier,
  type Classifier,
  type ModelMode,
} from './models/classifier.js';
export {
  loadAnyModel,
  checkLogits,
  type AnyModelOptions,
  type LoadedModel,
} from './models/any-model.js';
export { PIXELS, describePreprocess, type Preprocess } from './models/preprocess.js';
export {
  take,
  withClassCount,
  imageSetFingerprint,
  type ImageSet,
  type DataSplit,
} from './data/dataset.js';
export { noisyClassifier } from './defenses/noise-injection.js';
export { parseDefenses, defenseConfig, type DefenseConfig } from './defenses/defense.js';
export { train, runFolder, type TrainHooks, type TrainRun, type TrainStart } from './train/run.js';
export {
  TRAIN_DEFAULTS,
  TRAIN_OPTIONS,
  augmentFor,
  checkTrainOptions,
  freshModel,
  runOptions,
  trainConfig,
  trainMetadata,
  type TrainOptions,
} from './train/options.js';
export { trainModel, type TrainConfig, type TrainResult } from './train/trainer.js';
export type { EpochLog } from './train/epoch-log.js';
export type { ModelMeta } from './models/model-meta.js';
export { runAttack, type AttackStats, type AttackRunOptions } from './eval/attack-run.js';
export type { AttackRunState, KeepAdversarials } from './eval/attack-state.js';
export { runCascade, type CascadeRun, type CascadeStep } from './eval/cascade.js';
export { PRESETS, preset, type Preset } from './eval/presets.js';
export { runGrid, type EvalConfig, type EvalModel, type GridResult } from './eval/grid.js';
export { parseEvalConfig } from './eval/config.js';
export { evalModel } from './eval/eval-model.js';
export { loadDataForModel, loadGridModels } from './eval/model-data.js';
export { writeReports } from './eval/report.js';
export { runGridShard, type ShardOptions, type ShardRun } from './eval/shards.js';
export { parseShard, shardFromEnv, shardRange, type Shard } from './eval/shard-plan.js';
export { mergeShards, writeMerged, type MergedGrid } from './eval/merge.js';
export { accuracy, withPredictedLabels } from './eval/accuracy.js';
export { RobustError } from './util/errors.js';
