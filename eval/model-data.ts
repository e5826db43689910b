/**
 * The images a model is evaluated on: its data set (or the one named), the test images fitted to
 * its input, the classes checked against its outputs, and a refusal when its outputs turn out to
 * be probabilities. Also the models of a grid, loaded as one.
 */
import tf from '#tfjs';
import { loadData } from '../data/index.js';
import { take, withClassCount, type DataSplit } from '../data/dataset.js';
import { NO_AUGMENT, makeBatch } from '../data/batches.js';
import { fitImages } from '../data/fit.js';
import { check, checkOption } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  checkLogits,
  loadAnyModel,
  type AnyModelOptions,
  type LoadedModel,
} from '../models/any-model.js';
import { evalModel } from './eval-model.js';
import { checkClassCount } from './class-count.js';
import type { EvalConfig, EvalModel } from './grid.js';

export interface ModelDataOptions {
  /** A data spec (built-in name, folder:, npz:, npy:); default: the one in the model's metadata. */
  data?: string;
  dataDir?: string;
  /** Load (and fit) only the first N images. */
  limit?: number;
  /** 'predicted': the source may be unlabeled, labels come from the model's predictions. */
  labels?: 'dataset' | 'predicted';
  /** Receives notes on what was done to the images (default: stderr). */
  note?: (line: string) => void;
}

/** For a model robust did not build, one line on what was loaded and how it is fed. */
export function noteLoaded(
  where: string,
  m: LoadedModel,
  note: (line: string) => void = (l) => console.error(l),
): void {
  if (m.kind !== 'robust')
    note(`note: ${where}: ${m.kind === 'graph' ? 'GraphModel' : 'LayersModel'}, ${m.input}`);
}

/** The data `m` is evaluated on; `fit` describes how its test images were fitted to the model, when they were. */
export async function loadDataForModel(
  m: LoadedModel,
  o: ModelDataOptions = {},
): Promise<DataSplit & { fit?: string }> {
  const note = o.note ?? ((line: string) => console.error(line));
  const name = o.data ?? m.meta.data;
  checkOption(name, (n) => `${m.path}: the model does not record its data set: give ${n('data')}`);
  // labels without class names ('0'..'k-1', from an npz or a CSV) stand for as many classes as the model has
  const loaded = withClassCount(
    await loadData(name, {
      dataDir: o.dataDir,
      limit: o.limit,
      allowUnlabeled: o.labels === 'predicted',
      note,
    }),
    m.numClasses,
  );
  check(loaded.test.count > 0, `${loaded.name} has no test images`);
  const [h, w, c] = m.inputShape;
  let data: DataSplit & { fit?: string } = loaded;
  const t = loaded.test;
  if (h !== t.height || w !== t.width || c !== t.channels) {
    const { set, fit } = fitImages(t, { height: h, width: w, channels: c });
    note(`note: ${loaded.name}'s test images fitted to the model's input: ${fit.description}`);
    data = { ...loaded, test: set, fit: fit.description };
  }
  checkClassCount(m, data);
  const first = take(data.test, 64);
  if (first.count > 0) {
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
  return data;
}

export interface GridModelOptions
  extends Omit<AnyModelOptions, 'seed'>, Omit<ModelDataOptions, 'data' | 'limit'> {}

export interface GridModels {
  /** The grid's rows, for runGrid / runGridShard. */
  models: EvalModel[];
  /** The data set's name (one for all models). */
  data: string;
  /** Frees every model. */
  dispose(): void;
}

/** Loads `config.models` with their data (config.data, config.limit) as rows of the grid. */
export async function loadGridModels(
  config: EvalConfig,
  o: GridModelOptions = {},
): Promise<GridModels> {
  const loaded: LoadedModel[] = [];
  const models: EvalModel[] = [];
  let dataName: string | undefined;
  const dispose = () => loaded.forEach((m) => m.dispose());
  try {
    for (const location of config.models) {
      const m = await loadAnyModel(location, { ...o, seed: config.seed });
      loaded.push(m);
      noteLoaded(location, m, o.note);
      const data = await loadDataForModel(m, { ...o, data: config.data, limit: config.limit });
      check(
        !dataName || dataName === data.name,
        `all models must use one data set: ${dataName} and ${data.name}`,
      );
      dataName = data.name;
      models.push(
        evalModel(m, data.test, {
          name: location,
          labels: o.labels,
          limit: config.limit,
          fit: data.fit,
          classes: data.classes,
        }),
      );
    }
  } catch (e) {
    dispose();
    throw e;
  }
  return { models, data: dataName!, dispose };
}
