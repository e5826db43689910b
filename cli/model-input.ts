/** Resolving what a command attacks or evaluates: any TF.js model and the data it is evaluated on. */
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../models/checkpoint.js';
import { loadData } from '../data/index.js';
import { take, withClassCount, type DataSplit } from '../data/dataset.js';
import { NO_AUGMENT, makeBatch } from '../data/batches.js';
import { fitImages } from '../data/fit.js';
import { check } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { modelMeta, type ModelMeta } from '../models/model-meta.js';
import type { Classifier } from '../models/classifier.js';
import { checkLogits, loadAnyModel, modelLocation, robustClassifier, type LoadedModel } from '../models/any-model.js';
import { parseInputRange, parseMean, parseStd, PIXELS, type Preprocess } from '../models/preprocess.js';

export interface ModelCliOptions {
  inputRange?: [number, number];
  mean?: number[];
  std?: number[];
  output?: string;
  labels?: 'dataset' | 'predicted';
}

/** The options that say how to feed a model robust did not build (attack and eval share them). */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--input-range <lo,hi>', 'what the model takes for pixels 0..1: 0,1 (default) | 0,255 | -1,1 | any lo,hi', parseInputRange)
    .option('--mean <list>', "per-channel mean the model's inputs are normalized with, after --input-range (e.g. 0.485,0.456,0.406)", parseMean)
    .option('--std <list>', 'per-channel std, after --mean (e.g. 0.229,0.224,0.225)', parseStd)
    .option('--output <name>', 'the layer (LayersModel) or node (GraphModel) whose output are the logits (default: the input of a final softmax, else the outputs)')
    .option('--labels <source>', "dataset (default) | predicted: attack the model's own clean predictions (images without labels; how stable its decisions are)", (v: string) => {
      check(v === 'dataset' || v === 'predicted', `--labels must be dataset or predicted, got '${v}'`);
      return v;
    });
}

export function preprocessFrom(o: ModelCliOptions): Preprocess {
  if (!o.inputRange && !o.mean && !o.std) return PIXELS;
  return { range: o.inputRange ?? [0, 1], ...(o.mean ? { mean: o.mean } : {}), ...(o.std ? { std: o.std } : {}) };
}

/** The model at `where` (zoo:NAME, a folder, a model.json, a run folder) as the commands attack it; notes go to stderr. */
export async function loadModelFor(where: string, o: ModelCliOptions, seed?: number): Promise<LoadedModel> {
  const m = await loadAnyModel(where, { preprocess: preprocessFrom(o), output: o.output, seed });
  if (m.kind !== 'robust') console.error(`note: ${where}: ${m.kind === 'graph' ? 'GraphModel' : 'LayersModel'}, ${m.input}`);
  return m;
}

/** A robust checkpoint as users of its defense meet it (see robustClassifier). */
export function classifierFor(model: tf.LayersModel, meta: ModelMeta, seed?: number): Classifier {
  return robustClassifier(model, meta, seed);
}

export async function loadCheckpoint(location: string): Promise<{ model: tf.LayersModel; meta: ModelMeta; path: string }> {
  const p = modelLocation(location);
  const model = await loadModel(p);
  const meta = modelMeta(model, p);
  return { model, meta, path: p };
}

/**
 * Loads the data set (default: the one in the model's metadata), fits its test images to the
 * model's input (resize, gray ↔ RGB: `fit` says what was done), checks the classes, and refuses a
 * model whose outputs turn out to be probabilities.
 */
export async function loadDataFor(
  m: LoadedModel,
  o: { data?: string; dataDir?: string; limit?: number; labels?: 'dataset' | 'predicted' },
): Promise<DataSplit & { fit?: string }> {
  const name = o.data ?? m.meta.data;
  check(name, `${m.path}: the model does not record its data set: pass --data`);
  // labels without class names ('0'..'k-1', from an npz or a CSV) stand for as many classes as the model has
  const loaded = withClassCount(await loadData(name, { dataDir: o.dataDir, limit: o.limit, allowUnlabeled: o.labels === 'predicted' }), m.numClasses);
  const [h, w, c] = m.inputShape;
  let data: DataSplit & { fit?: string } = loaded;
  const t = loaded.test;
  if (h !== t.height || w !== t.width || c !== t.channels) {
    const { set, fit } = fitImages(t, { height: h, width: w, channels: c });
    console.error(`note: ${loaded.name}'s test images fitted to the model's input: ${fit.description}`);
    data = { ...loaded, test: set, fit: fit.description };
  }
  const k = data.classes.length;
  check(m.kind === 'robust' ? m.numClasses === k : m.numClasses >= k, `the model has ${m.numClasses} outputs but ${data.name} has ${k} classes`);
  const first = take(data.test, 64);
  if (first.count > 0) {
    const b = makeBatch(first, Int32Array.from({ length: first.count }, (_, i) => i), NO_AUGMENT, new Rng(0));
    try {
      checkLogits(m, b.x);
    } finally {
      tf.dispose([b.x, b.y]);
    }
  }
  return data;
}

export { formatEps } from '../util/format.js';
