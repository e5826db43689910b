/**
 * The images a model is evaluated on: its data set (or the one named), the test images fitted to
 * its input, the classes checked against its outputs, and a refusal when its outputs turn out to
 * be probabilities. Also the models of a grid, loaded as one.
 */
import { loadData } from '../data/index.js';
import { withClassCount, type DataSplit } from '../data/dataset.js';
import { check, checkOption } from '../util/errors.js';
import { loadAnyModel, type AnyModelOptions, type LoadedModel } from '../models/any-model.js';
import { evalModel } from './eval-model.js';
import { fitDataToModel } from './model-fit.js';
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
  return fitDataToModel(m, loaded, note);
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
