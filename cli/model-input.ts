/** Resolving what a command attacks or evaluates: a checkpoint and the data set it was trained on. */
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { loadModel } from '../models/checkpoint.js';
import { loadData } from '../data/index.js';
import { withClassCount, type DataSplit } from '../data/dataset.js';
import { check } from '../util/errors.js';
import { modelMeta, type ModelMeta } from '../models/model-meta.js';
import { noisyClassifier } from '../defenses/noise-injection.js';
import { layersClassifier, type Classifier } from '../models/classifier.js';
import { foldedClassifier } from '../models/fold.js';
import { resolvePretrained } from '../models/pretrained.js';
import { ZOO } from '../models/zoo.js';

/**
 * The model as users of the defense meet it: a noise-injection model is randomized at inference
 * (its recorded noise, averaged over its recorded number of draws); others are the plain model.
 * Zoo ResNets run BN-folded in inference mode (same function, faster).
 */
export function classifierFor(model: tf.LayersModel, meta: ModelMeta, seed?: number): Classifier {
  const folded = foldedClassifier(model);
  if (!folded && meta.model && ZOO.some((e) => e.name === meta.model)) {
    console.error(`note: the model's layers differ from ${meta.model}${meta.width ? ` width ${meta.width}` : ''} named in its metadata: it is evaluated as stored, without BN folding`);
  }
  const base = folded ?? layersClassifier(model);
  const d = meta.defenseConfig;
  if (d?.names?.includes('noise') && d.noiseStd) return noisyClassifier(base, { std: d.noiseStd, samples: d.noiseSamples ?? 1, seed });
  return base;
}

/** `zoo:NAME` (a shipped trained model), a checkpoint folder, its model.json, or a training run folder holding `checkpoint/`. */
export function checkpointPath(where: string): string {
  const location = resolvePretrained(where);
  if (!location.endsWith('.json') && !fs.existsSync(path.join(location, 'model.json')) && fs.existsSync(path.join(location, 'checkpoint', 'model.json'))) {
    return path.join(location, 'checkpoint');
  }
  return location;
}

export async function loadCheckpoint(location: string): Promise<{ model: tf.LayersModel; meta: ModelMeta; path: string }> {
  const p = checkpointPath(location);
  const model = await loadModel(p);
  const meta = modelMeta(model, p);
  return { model, meta, path: p };
}

/** Loads the data set (default: the one in the model's metadata) and checks it fits the model. */
export async function loadDataFor(model: tf.LayersModel, meta: ModelMeta, o: { data?: string; dataDir?: string; limit?: number }): Promise<DataSplit> {
  const name = o.data ?? meta.data;
  check(name, 'the model does not record its data set: pass --data');
  const [, h, w, c] = model.inputs[0].shape;
  const out = model.outputs[0].shape;
  // labels without class names ('0'..'k-1', from an npz or a CSV) stand for as many classes as the model has
  const data = withClassCount(await loadData(name, { dataDir: o.dataDir, limit: o.limit }), out[out.length - 1] as number);
  const t = data.test;
  check(h === t.height && w === t.width && c === t.channels, `the model takes ${h}×${w}×${c} images but ${data.name} has ${t.height}×${t.width}×${t.channels}`);
  check(out[out.length - 1] === data.classes.length, `the model has ${out[out.length - 1]} outputs but ${data.name} has ${data.classes.length} classes`);
  return data;
}

export { formatEps } from '../util/format.js';
