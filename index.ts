/** robust: adversarial robustness for TensorFlow.js. The public API, by area. */
export * as attacks from './attacks/index.js';
export { initBackend, describeBackend } from './backend/index.js';
export { loadData, prepareData, DATASETS } from './data/index.js';
export { createModel, ZOO } from './models/zoo.js';
export { loadModel, modelFingerprint, saveCheckpoint } from './models/checkpoint.js';
export { loadPretrained, pretrainedEntries, type PretrainedEntry } from './models/pretrained.js';
export { foldedClassifier } from './models/fold.js';
export { asClassifier, layersClassifier, type Classifier } from './models/classifier.js';
export { noisyClassifier } from './defenses/noise-injection.js';
export { parseDefenses, defenseConfig, type DefenseConfig } from './defenses/defense.js';
export { train, type TrainConfig } from './train/trainer.js';
export { runAttack, type AttackStats, type AttackRunOptions } from './eval/attack-run.js';
export type { AttackRunState, KeepAdversarials } from './eval/attack-state.js';
export { runCascade, type CascadeRun, type CascadeStep } from './eval/cascade.js';
export { PRESETS, preset, type Preset } from './eval/presets.js';
export { runGrid, type EvalConfig, type GridResult } from './eval/grid.js';
export { accuracy } from './eval/accuracy.js';
export { RobustError } from './util/errors.js';
