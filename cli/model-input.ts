/** Resolving what a command attacks or evaluates: any TF.js model and the data it is evaluated on. */
import type { Command } from 'commander';
import type * as tf from '@tensorflow/tfjs';
import { loadModel } from '../models/checkpoint.js';
import { check } from '../util/errors.js';
import { modelMeta, type ModelMeta } from '../models/model-meta.js';
import type { Classifier } from '../models/classifier.js';
import {
  loadAnyModel,
  modelLocation,
  robustClassifier,
  type LoadedModel,
} from '../models/any-model.js';
import { loadDataForModel, noteLoaded } from '../eval/model-data.js';
import {
  parseInputRange,
  parseMean,
  parseStd,
  PIXELS,
  type Preprocess,
} from '../models/preprocess.js';

export interface ModelCliOptions {
  inputRange?: [number, number];
  mean?: number[];
  std?: number[];
  output?: string;
  labels?: 'dataset' | 'predicted';
}

function parseLabels(v: string): 'dataset' | 'predicted' {
  check(v === 'dataset' || v === 'predicted', `--labels must be dataset or predicted, got '${v}'`);
  return v;
}

/** The model options by key, with their parsers (the flags', and an eval --config file's). */
export const MODEL_OPTION_PARSERS: Record<keyof ModelCliOptions, (v: string) => unknown> = {
  inputRange: parseInputRange,
  mean: parseMean,
  std: parseStd,
  output: (v) => v,
  labels: parseLabels,
};

/** The options that say how to feed a model robust did not build (attack and eval share them). */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option(
      '--input-range <lo,hi>',
      'what the model takes for pixels 0..1: 0,1 (default) | 0,255 | -1,1 | any lo,hi',
      parseInputRange,
    )
    .option(
      '--mean <list>',
      "per-channel mean the model's inputs are normalized with, after --input-range (e.g. 0.485,0.456,0.406)",
      parseMean,
    )
    .option('--std <list>', 'per-channel std, after --mean (e.g. 0.229,0.224,0.225)', parseStd)
    .option(
      '--output <name>',
      'the layer (LayersModel) or node (GraphModel) whose output are the logits (default: the input of a final softmax, else the outputs)',
    )
    .option(
      '--labels <source>',
      "dataset (default) | predicted: attack the model's own clean predictions (images without labels; how stable its decisions are)",
      parseLabels,
    );
}

function preprocessFrom(o: ModelCliOptions): Preprocess {
  if (!o.inputRange && !o.mean && !o.std) return PIXELS;
  return {
    range: o.inputRange ?? [0, 1],
    ...(o.mean ? { mean: o.mean } : {}),
    ...(o.std ? { std: o.std } : {}),
  };
}

/** What the model options say, for loadAnyModel / loadGridModels. */
export const modelOptionsFrom = (o: ModelCliOptions) => ({
  preprocess: preprocessFrom(o),
  output: o.output,
});

/** The model at `where` (zoo:NAME, a folder, a model.json, a run folder) as the commands attack it; notes go to stderr. */
export async function loadModelFor(
  where: string,
  o: ModelCliOptions,
  seed?: number,
): Promise<LoadedModel> {
  const m = await loadAnyModel(where, { ...modelOptionsFrom(o), seed });
  noteLoaded(where, m);
  return m;
}

/** A robust checkpoint as users of its defense meet it (see robustClassifier). */
export function classifierFor(model: tf.LayersModel, meta: ModelMeta, seed?: number): Classifier {
  return robustClassifier(model, meta, seed);
}

export async function loadCheckpoint(
  location: string,
): Promise<{ model: tf.LayersModel; meta: ModelMeta; path: string }> {
  const p = modelLocation(location);
  const model = await loadModel(p);
  const meta = modelMeta(model, p);
  return { model, meta, path: p };
}

/** The data `m` is evaluated on (see loadDataForModel). */
export const loadDataFor = loadDataForModel;

export { formatEps } from '../util/format.js';
