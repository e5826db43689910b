/**
 * Test images made ready for a model, once they are loaded: fitted to its input, their classes
 * checked against its outputs, and a refusal when its outputs turn out to be probabilities. No
 * files are read here, so the CLI (eval/model-data.ts) and the page's worker share it.
 */
import tf from '#tfjs';
import { take, type ImageSet } from '../data/dataset.js';
import { NO_AUGMENT, makeBatch } from '../data/batches.js';
import { fitImages } from '../data/fit.js';
import { checkLogits, type LoadedModel } from '../models/model-from-files.js';
import { check } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { checkClassCount } from './class-count.js';

interface TestData {
  name: string;
  test: ImageSet;
  classes: readonly string[];
}

/**
 * `data` for `m`: its test images fitted to the model's input when they differ (`fit` says how,
 * and so does a note), after the checks that the images and the model's outputs go together
 * (`outputs: false` leaves the outputs' check to `checkModelOutputs`).
 */
export function fitDataToModel<D extends TestData>(
  m: LoadedModel,
  data: D,
  note: (line: string) => void,
  { outputs = true }: { outputs?: boolean } = {},
): D & { fit?: string } {
  check(data.test.count > 0, `${data.name} has no test images`);
  const [h, w, c] = m.inputShape;
  let fitted: D & { fit?: string } = data;
  const t = data.test;
  if (h !== t.height || w !== t.width || c !== t.channels) {
    const { set, fit } = fitImages(t, { height: h, width: w, channels: c });
    note(`note: ${data.name}'s test images fitted to the model's input: ${fit.description}`);
    fitted = { ...data, test: set, fit: fit.description };
  }
  checkClassCount(m, fitted);
  if (outputs) checkModelOutputs(m, fitted.test);
  return fitted;
}

/**
 * Refuses a model whose outputs are probabilities rather than logits, seen on the first 64 images
 * (fitted to its input). Separate from the fit so the page can first prove a GPU backend computes
 * this model right (eval/backend-check.ts): a wrong backend would be blamed on the model here.
 */
export function checkModelOutputs(m: LoadedModel, test: ImageSet): void {
  const first = take(test, 64);
  const b = makeBatch(
    first,
    Int32Array.from({ length: first.count }, (_, i) => i),
    NO_AUGMENT,
    new Rng(0),
  );
  try {
    checkLogits(m, b.x);
  } finally {
    tf.dispose([b.x, b.y]);
  }
}
