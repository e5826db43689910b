/** A loaded model and its test images as one row of an evaluation grid. */
import path from 'node:path';
import { take, type ImageSet } from '../data/dataset.js';
import type { LoadedModel } from '../models/any-model.js';
import { withPredictedLabels } from './accuracy.js';
import type { EvalModel } from './grid.js';

export interface EvalModelOptions {
  /** How the model is named in the results (default: the location it was loaded from). */
  name?: string;
  /** 'predicted': the first `limit` images, labelled with the model's own clean predictions. */
  labels?: 'dataset' | 'predicted';
  limit?: number;
  /** How the images were fitted to the model's input (fitImages' description), when they were. */
  fit?: string;
}

export function evalModel(m: LoadedModel, test: ImageSet, o: EvalModelOptions = {}): EvalModel {
  const location = o.name ?? m.path;
  const predicted = o.labels === 'predicted';
  return {
    path: location,
    name: path.basename(location),
    model: m.layers,
    classifier: m.classifier,
    arch: m.arch,
    params: m.params,
    ...(m.kind !== 'robust' || o.fit ? { input: [m.kind !== 'robust' ? m.input : '', o.fit ? `images ${o.fit}` : ''].filter(Boolean).join('; ') } : {}),
    ...(predicted ? { labels: 'predicted' as const } : {}),
    defense: m.meta.defense ?? 'none',
    test: predicted ? withPredictedLabels(m.classifier, take(test, o.limit)) : test,
    fingerprint: m.fingerprint,
  };
}
