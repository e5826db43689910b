/**
 * robust in a browser (`robust/browser`, dist/browser/robust.js): the attacks, models from files
 * in memory, the grid with its cells in memory, the reports as text, and the backends a page has
 * (webgpu → webgl → wasm → cpu). The same code as the CLI's, with util/platform-browser.ts in
 * place of util/platform.ts; nothing here reads files or starts processes.
 */
export * as attacks from './attacks/index.js';
export {
  initBrowserBackend,
  describeBrowserBackend,
  BROWSER_BACKENDS,
  type BrowserBackendInfo,
  type BrowserBackendName,
  type BrowserBackendOptions,
} from './backend/browser.js';
export { modelFilesFromBytes, type ModelFiles } from './models/model-bytes.js';
export {
  modelFromFiles,
  checkLogits,
  type AnyModelOptions,
  type LoadedModel,
} from './models/model-from-files.js';
export { PIXELS, describePreprocess, type Preprocess } from './models/preprocess.js';
export type { Classifier } from './models/classifier.js';
export {
  take,
  imageSetFingerprint,
  withClassCount,
  requireLabels,
  type ImageSet,
} from './data/dataset.js';
export { FOLDER_HINT } from './data/folder.js';
export { parseIdxBytes, idxImageSet, FASHION_CLASSES } from './data/idx.js';
export {
  CIFAR10_CLASSES,
  TEST_FILE as CIFAR10_TEST_FILE,
  parseCifarBatches,
} from './data/cifar10-records.js';
export { cifar10TestFromFile, type NamedBlob } from './data/cifar10-file.js';
export { decodeImage, type DecodedImage } from './data/images.js';
export {
  loadFolderFiles,
  filesFolderSource,
  folderFilesFromEntry,
  type FolderFile,
  type DirectoryEntryLike,
} from './data/folder-files.js';
export { fitImages, type FitInfo, type FitTarget } from './data/fit.js';
export { checkClassCount } from './eval/class-count.js';
export { checkModelOutputs, fitDataToModel } from './eval/model-fit.js';
export {
  runAttack,
  describePosition,
  positionDone,
  type AttackStats,
  type AttackRunOptions,
  type RunPosition,
} from './eval/attack-run.js';
export { runCascade, type CascadeRun, type CascadeStep } from './eval/cascade.js';
export {
  runGridIn,
  memoryCellStore,
  worstCases,
  type CellStore,
  type EvalConfig,
  type EvalModel,
  type GridResult,
  type CellResult,
} from './eval/grid-core.js';
export { parseEvalConfig } from './eval/config.js';
export { evalModel } from './eval/eval-model.js';
export { checkBackend, needsBackendCheck, type BackendCheck } from './eval/backend-check.js';
export { toCsv, toMarkdown, toHtml, reportFiles } from './eval/report-core.js';
export { sanityFlags } from './eval/sanity-flags.js';
export { RobustError } from './util/errors.js';
export * as tf from '@tensorflow/tfjs';
export { sha256Hex } from './util/platform.js';
export { wasmKernelCalls } from './backend/wasm/wasm-kernels.js';
