/** A LayersModel built from checked model files (models/model-bytes.ts), with its identity kept for cached results. */
import tf from '#tfjs';
import { RobustError } from '../util/errors.js';
import { checkTopology } from './layers-topology.js';
import type { ModelFiles } from './model-bytes.js';

/** A LayersModel from files read by `readModelFiles`, built as stored (topology checked first). */
export async function buildLayersModel(files: ModelFiles): Promise<tf.LayersModel> {
  const { jsonPath, json, specs } = files;
  checkTopology(jsonPath, json.modelTopology!);
  let model: tf.LayersModel;
  const release = guardWeights(jsonPath, specs);
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: files.weightData,
        userDefinedMetadata: json.userDefinedMetadata,
      }),
    );
  } catch (e) {
    if (e instanceof RobustError) throw e;
    throw new RobustError(
      `${jsonPath}: cannot build the model (${(e as Error).message.split('\n')[0]})`,
    );
  } finally {
    release();
  }
  fingerprints.set(model, files.sha256);
  return model;
}

const fingerprints = new WeakMap<tf.LayersModel, string>();

/**
 * SHA-256 of what `loadModel` read — topology, weight manifest, metadata and weight bytes — so a
 * cached result is tied to the model actually evaluated; undefined for a model built in memory.
 */
export function modelFingerprint(model: tf.LayersModel): string | undefined {
  return fingerprints.get(model);
}

/** Weight manifests of the loads in progress (several loads may overlap across awaits). */
const activeManifests = new Set<{ file: string; shapes: Map<string, number[]>; total: number }>();
type AddWeight = (
  this: tf.layers.Layer,
  name: string,
  shape: number[],
  ...rest: unknown[]
) => tf.LayerVariable;
const layerProto = tf.layers.Layer.prototype as unknown as { addWeight: AddWeight };
let stockAddWeight: AddWeight | undefined;

/**
 * While a checkpoint loads, every weight a layer creates is checked against the manifest before
 * tfjs allocates it: a tiny model.json declaring a huge layer (Dense with 1e9 units) would
 * otherwise allocate gigabytes before the shapes are compared. A weight the manifest names must
 * have its shape; any weight must fit in the manifest's total size. Returns the undo.
 */
function guardWeights(file: string, specs: tf.io.WeightsManifestEntry[]): () => void {
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const entry = {
    file,
    shapes: new Map(specs.map((w) => [w.name, w.shape])),
    total: specs.reduce((n, w) => n + size(w.shape), 0),
  };
  if (!stockAddWeight) {
    const stock = layerProto.addWeight;
    stockAddWeight = stock;
    layerProto.addWeight = function (
      this: tf.layers.Layer,
      name: string,
      shape: number[],
      ...rest: unknown[]
    ) {
      let refusal: string | undefined;
      for (const m of activeManifests) {
        const want = m.shapes.get(`${this.name}/${name}`);
        const dims = `[${shape.join(', ')}]`;
        if (want && want.join() !== shape.join())
          refusal ??= `${m.file}: layer ${this.name} makes weight ${name} of shape ${dims} but the weights manifest has [${want.join(', ')}]`;
        else if (!want && !(size(shape) <= m.total))
          refusal ??= `${m.file}: layer ${this.name} declares a weight ${name} of shape ${dims}, larger than all the weights in the manifest`;
        else return stock.call(this, name, shape, ...rest); // fits one of the loads in progress
      }
      if (refusal) throw new RobustError(refusal);
      return stock.call(this, name, shape, ...rest);
    };
  }
  activeManifests.add(entry);
  return () => {
    activeManifests.delete(entry);
    if (activeManifests.size === 0 && stockAddWeight) {
      layerProto.addWeight = stockAddWeight;
      stockAddWeight = undefined;
    }
  };
}
