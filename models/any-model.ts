/**
 * Any TF.js model by name or place — `zoo:NAME`, a model folder, its model.json, a training run —
 * read from disk and made a Classifier by models/model-from-files.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readModelFiles } from './model-files.js';
import { modelFromFiles, type AnyModelOptions, type LoadedModel } from './model-from-files.js';
import { resolvePretrained } from './pretrained.js';

export {
  checkLogits,
  robustClassifier,
  type AnyModelOptions,
  type LoadedModel,
} from './model-from-files.js';

/** `zoo:NAME` (checked), a model folder, its model.json, or a training run folder holding `checkpoint/`. */
export function modelLocation(where: string): string {
  const location = resolvePretrained(where);
  if (
    !location.endsWith('.json') &&
    !fs.existsSync(path.join(location, 'model.json')) &&
    fs.existsSync(path.join(location, 'checkpoint', 'model.json'))
  ) {
    return path.join(location, 'checkpoint');
  }
  return location;
}

/** Loads any TF.js model at `where` as a Classifier over [0,1] pixels. */
export async function loadAnyModel(where: string, o: AnyModelOptions = {}): Promise<LoadedModel> {
  const location = modelLocation(where);
  return modelFromFiles(location, readModelFiles(location), o);
}
