/** A loaded model and its test images as one row of an evaluation grid. */
import { take, type ImageSet } from '../data/dataset.js';
import type { LoadedModel } from '../models/model-from-files.js';
import { withPredictedLabels } from './accuracy.js';
import type { EvalModel } from './grid-core.js';

/** The last part of a path or URL (as path.basename, without Node). */
const baseName = (location: string): string => location.replace(/\/+$/, '').split('/').pop()!;

export interface EvalModelOptions {
  /** How the model is named in the results (default: the location it was loaded from). */
  name?: string;
  /** 'predicted': the first `limit` images, labelled with the model's own clean predictions. */
  labels?: 'dataset' | 'predicted';
  limit?: number;
  /** How the images were fitted to the model's input (fitImages' description), when they were. */
  fit?: string;
  /** The data set's class names, for the gallery's captions. */
  classes?: string[];
}

export function evalModel(m: LoadedModel, test: ImageSet, o: EvalModelOptions = {}): EvalModel {
  const location = o.name ?? m.path;
  const predicted = o.labels === 'predicted';
  return {
    path: location,
    name: baseName(location),
    model: m.layers,
    classifier: m.classifier,
    arch: m.arch,
    params: m.params,
    ...(m.kind !== 'robust' || o.fit
      ? {
          input: [m.kind !== 'robust' ? m.input : '', o.fit ? `images ${o.fit}` : '']
            .filter(Boolean)
            .join('; '),
        }
      : {}),
    ...(predicted ? { labels: 'predicted' as const } : {}),
    defense: m.meta.defense ?? 'none',
    test: predicted ? withPredictedLabels(m.classifier, take(test, o.limit)) : test,
    ...(o.classes ? { classes: o.classes } : {}),
    fingerprint: m.fingerprint,
  };
}
