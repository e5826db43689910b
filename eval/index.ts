/** `robust/eval`: grids of models × attacks × budgets, AutoAttack's cascade, reports and shards. */
export {
  runGrid,
  worstCases,
  parseAttackEntry,
  type EvalConfig,
  type EvalModel,
  type GridResult,
  type GridOptions,
  type CellResult,
  type ModelSummary,
  type WorstCase,
} from './grid.js';
export { parseEvalConfig } from './config.js';
export { evalModel, type EvalModelOptions } from './eval-model.js';
export {
  loadDataForModel,
  loadGridModels,
  type ModelDataOptions,
  type GridModelOptions,
  type GridModels,
} from './model-data.js';
export {
  runAttack,
  describePosition,
  positionDone,
  type AttackStats,
  type AttackRun,
  type AttackRunOptions,
  type RunPosition,
} from './attack-run.js';
export { runCascade, type CascadeRun, type CascadeStep } from './cascade.js';
export { PRESETS, preset, type Preset } from './presets.js';
export { writeReports, toCsv, toMarkdown, toHtml } from './report.js';
export { modelChecks, type ModelChecks } from './sanity.js';
export {
  checkBackend,
  compareLogits,
  needsBackendCheck,
  CHECK_IMAGES,
  CHECK_TOLERANCE,
  type BackendCheck,
  type BackendCheckOptions,
} from './backend-check.js';
export { sanityFlags, type Flag } from './sanity-flags.js';
export { accuracy, withPredictedLabels } from './accuracy.js';
export { runGridShard, type ShardOptions, type ShardRun } from './shards.js';
export { parseShard, shardFromEnv, shardRange, type Shard } from './shard-plan.js';
export { mergeShards, writeMerged, type MergedGrid } from './merge.js';
