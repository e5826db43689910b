/**
 * Any TF.js model as a Classifier over [0,1] NHWC pixels, from its checked files in memory: robust's
 * own checkpoints, any other LayersModel (Sequential or functional, every built-in layer class) and
 * any GraphModel. A model robust did not build runs exactly as stored, with its preprocessing
 * declared (range, mean, std) and its logits found (never attacked on probabilities silently).
 * models/any-model.ts finds and reads the files (zoo names, folders).
 */
import tf from '#tfjs';
import { optionError, RobustError } from '../util/errors.js';
import { sha256Hex } from '../util/platform.js';
import { noisyClassifier } from '../defenses/noise-injection.js';
import type { Classifier } from './classifier.js';
import { buildLayersModel } from './layers-build.js';
import { foldedClassifier } from './fold.js';
import { loadGraphLogits } from './graph-model.js';
import { layersLogits, type LogitsSource } from './layers-logits.js';
import { weightCount, type ModelFiles } from './model-bytes.js';
import { modelMeta, type ModelMeta } from './model-meta.js';
import {
  preprocessor,
  checkPreprocess,
  describePreprocess,
  isPixels,
  PIXELS,
  type Preprocess,
} from './preprocess.js';
import { ZOO, countParams } from './zoo.js';

export interface AnyModelOptions {
  /** What the model takes for [0,1] pixels (default: [0,1] as they are). */
  preprocess?: Preprocess;
  /** The layer (LayersModel) or node (GraphModel) whose output are the logits. */
  output?: string;
  /** Seed of a randomized defense's noise. */
  seed?: number;
  /** Receives notes on what was assumed or found (default: stderr). */
  note?: (line: string) => void;
}

export interface LoadedModel {
  /** The checkpoint folder or model.json that was read. */
  path: string;
  kind: 'robust' | 'layers' | 'graph';
  classifier: Classifier;
  /** [height, width, channels] the model takes. */
  inputShape: [number, number, number];
  numClasses: number;
  /** robust's own metadata ({} for a model robust did not make). */
  meta: ModelMeta;
  /** SHA-256 of everything that decides the outputs: files, preprocessing, logits choice. */
  fingerprint: string;
  arch: string;
  params: number;
  /** How inputs and logits are taken, for results' metadata ("inputs in [0,255]; logits: …"). */
  input: string;
  logits: LogitsSource;
  /** The LayersModel, for robust checkpoints and other LayersModels. */
  layers?: tf.LayersModel;
  dispose(): void;
}

/**
 * A robust checkpoint as users of its defense meet it: a noise-injection model is randomized at
 * inference (its recorded noise, averaged over its recorded draws); zoo ResNets run BN-folded in
 * inference mode, but only when the loaded layers are verified to be the architecture named.
 */
export function robustClassifier(
  model: tf.LayersModel,
  meta: ModelMeta,
  seed?: number,
  note: (line: string) => void = (l) => console.error(l),
): Classifier {
  const folded = foldedClassifier(model);
  if (!folded && meta.model && ZOO.some((e) => e.name === meta.model)) {
    note(
      `note: the model's layers differ from ${meta.model}${meta.width ? ` width ${meta.width}` : ''} named in its metadata: it is evaluated as stored, without BN folding`,
    );
  }
  const base = folded ?? {
    numClasses: model.outputs[0].shape[model.outputs[0].shape.length - 1] as number,
    randomized: false,
    statefulWeights: model.nonTrainableWeights,
    logits: (x: tf.Tensor4D, mode: string) =>
      model.apply(x, { training: mode === 'train' }) as tf.Tensor2D,
  };
  const d = meta.defenseConfig;
  if (d?.names?.includes('noise') && d.noiseStd)
    return noisyClassifier(base, { std: d.noiseStd, samples: d.noiseSamples ?? 1, seed });
  return base;
}

/** The files' hash when they alone decide the outputs, else a hash of files, preprocessing and logits choice. */
const keyOf = (sha: string, p: Preprocess, output: string | undefined, logits: string) =>
  isPixels(p) && output === undefined && logits === 'outputs'
    ? sha
    : sha256Hex(JSON.stringify({ files: sha, preprocess: p, output: output ?? null, logits }));

/** The model in `files` (read from `location`, which results name it by) as a Classifier over [0,1] pixels. */
export async function modelFromFiles(
  location: string,
  files: ModelFiles,
  o: AnyModelOptions = {},
): Promise<LoadedModel> {
  const note = o.note ?? ((line: string) => console.error(line));
  const p = o.preprocess ?? PIXELS;
  const isGraph =
    files.json.format === 'graph-model' ||
    Array.isArray((files.json.modelTopology as { node?: unknown }).node);
  const robustMade =
    !isGraph &&
    (files.json.userDefinedMetadata as { robust?: unknown } | undefined)?.robust !== undefined;
  if (robustMade) {
    // Normalization is inside robust's models: they take [0,1] pixels, and their heads are logits.
    if (!isPixels(p))
      throw optionError(
        (n) =>
          `${files.jsonPath}: a robust checkpoint takes [0,1] pixels (its normalization is inside the model): leave out ${n('preprocess')}`,
      );
    if (o.output !== undefined)
      throw optionError(
        (n) => `${files.jsonPath}: a robust checkpoint outputs logits: leave out ${n('output')}`,
      );
    const model = await buildLayersModel(files);
    const meta = modelMeta(model, files.jsonPath);
    const classifier = robustClassifier(model, meta, o.seed, note);
    const [, h, w, c] = model.inputs[0].shape as number[];
    return {
      path: location,
      kind: 'robust',
      classifier,
      inputShape: [h, w, c],
      numClasses: classifier.numClasses,
      meta,
      fingerprint: files.sha256,
      arch: meta.model ?? model.name,
      params: countParams(model),
      input: 'inputs in [0,1] (normalization inside the model)',
      logits: 'outputs',
      layers: model,
      dispose: () => {
        classifier.dispose?.();
        model.dispose();
      },
    };
  }
  if (isGraph) {
    const g = await loadGraphLogits(files, o.output);
    try {
      checkPreprocess(p, g.inputShape[2], files.jsonPath);
    } catch (e) {
      g.model.dispose();
      throw e;
    }
    const input = `${describePreprocess(p)}; ${g.note ?? "logits: the graph's output"}`;
    const prep = preprocessor(p);
    const classifier: Classifier = {
      numClasses: g.numClasses,
      randomized: false,
      statefulWeights: [],
      // A graph has no training mode: both modes run it as converted.
      logits: (x) => tf.tidy(() => g.apply(prep.apply(x))),
    };
    return {
      path: location,
      kind: 'graph',
      classifier,
      inputShape: g.inputShape,
      numClasses: g.numClasses,
      meta: {},
      fingerprint: keyOf(files.sha256, p, o.output, g.logitsNode),
      arch: 'graph-model',
      params: weightCount(files.specs),
      input,
      logits: g.source,
      dispose: () => {
        prep.dispose();
        g.model.dispose();
      },
    };
  }
  const model = await buildLayersModel(files);
  try {
    const [, h, w, c] = model.inputs[0].shape as number[];
    if (!(h > 0 && w > 0 && c > 0) || model.inputs[0].shape.length !== 4)
      throw new RobustError(
        `${files.jsonPath}: the model's input has shape [${model.inputs[0].shape.map((d) => d ?? '?').join(', ')}], not [batch, height, width, channels] with known sizes`,
      );
    checkPreprocess(p, c, files.jsonPath);
    const head = layersLogits(model, files.jsonPath, o.output);
    try {
      // one pass on a blank image: a model tfjs builds but cannot run (a softmax over another axis…) is one line here
      tf.tidy(() => head.apply(tf.zeros([1, h, w, c]) as tf.Tensor4D, false));
    } catch (e) {
      head.dispose();
      throw new RobustError(
        `${files.jsonPath}: the model does not run in TF.js on this backend (${(e as Error).message.split('\n')[0]})`,
      );
    }
    const prep = preprocessor(p);
    const classifier: Classifier = {
      numClasses: head.numClasses,
      randomized: false,
      statefulWeights: model.nonTrainableWeights,
      logits: (x, mode) => tf.tidy(() => head.apply(prep.apply(x), mode === 'train')),
    };
    return {
      path: location,
      kind: 'layers',
      classifier,
      inputShape: [h, w, c],
      numClasses: head.numClasses,
      meta: {},
      fingerprint: keyOf(files.sha256, p, o.output, head.source),
      arch: model.name,
      params: countParams(model),
      input: `${describePreprocess(p)}; ${head.note ?? "logits: the model's outputs"}`,
      logits: head.source,
      layers: model,
      dispose: () => {
        prep.dispose();
        head.dispose();
        model.dispose();
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Refuses a model whose outputs are probabilities (rows in [0,1] summing to one on `images`) when
 * no softmax was found to take logits from: attacking probabilities silently understates attacks.
 */
export function checkLogits(m: LoadedModel, images: tf.Tensor4D): void {
  // a final softmax or sigmoid was found and cut off, or the outputs are log-probabilities: logits
  if (m.kind === 'robust' || !(m.logits === 'outputs' || m.logits === 'named')) return;
  const probs = tf.tidy(() => {
    const z = m.classifier.logits(images, 'inference');
    return z
      .min()
      .greaterEqual(0)
      .logicalAnd(z.max().lessEqual(1))
      .logicalAnd(z.sum(1).sub(1).abs().max().less(1e-4))
      .dataSync()[0];
  });
  if (probs) {
    throw optionError((n) =>
      m.logits === 'named'
        ? `${m.path}: the ${n('output')} named gives probabilities (each row sums to 1): name the logits, the input of the softmax`
        : `${m.path}: the outputs are probabilities (each row sums to 1) and no final softmax was found to take logits from: name the logits with ${n('output')}`,
    );
  }
}
