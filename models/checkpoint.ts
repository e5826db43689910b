/**
 * Checkpoints: a folder with the standard TF.js LayersModel files (model.json + weights.bin,
 * readable by tf.loadLayersModel) plus, for training runs, state.json and optimizer.bin.
 * Every write builds a new folder and renames it into place, so a kill never leaves half of one.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { RobustError } from '../util/errors.js';
import { writeDirAtomic } from '../util/atomic.js';
import { readJsonFile } from '../util/json-file.js';
import { readRegularFile } from '../util/read-file.js';
import { checkTopology } from './layers-topology.js';
import { readModelFiles, type ModelFiles } from './model-files.js';

export interface SavedExtras {
  state?: unknown;
  optimizer?: Float32Array[];
}

async function modelArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return artifacts!;
}

function concatBuffers(parts: Float32Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), o);
    o += p.byteLength;
  }
  return out;
}

export async function saveCheckpoint(dir: string, model: tf.LayersModel, extras: SavedExtras = {}): Promise<void> {
  const a = await modelArtifacts(model);
  const weightData = new Uint8Array(a.weightData as ArrayBuffer);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: 'robust',
    modelTopology: a.modelTopology,
    userDefinedMetadata: a.userDefinedMetadata,
    weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
  };
  await writeDirAtomic(dir, (tmp) => {
    fs.writeFileSync(path.join(tmp, 'model.json'), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(tmp, 'weights.bin'), weightData);
    if (extras.state !== undefined) fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(extras.state, null, 2));
    if (extras.optimizer) fs.writeFileSync(path.join(tmp, 'optimizer.bin'), concatBuffers(extras.optimizer));
  });
}

/** Reads model.json + weight shards from a folder (or a model.json path) into a LayersModel. */
export async function loadModel(location: string): Promise<tf.LayersModel> {
  const files = readModelFiles(location);
  if (files.json.format === 'graph-model') throw new RobustError(`${files.jsonPath}: a GraphModel, not a LayersModel (robust attack/eval load both)`);
  return buildLayersModel(files);
}

/** A LayersModel from files read by `readModelFiles`, built as stored (topology checked first). */
export async function buildLayersModel(files: ModelFiles): Promise<tf.LayersModel> {
  const { jsonPath, json, specs } = files;
  checkTopology(jsonPath, json.modelTopology!);
  let model: tf.LayersModel;
  const release = guardWeights(jsonPath, specs);
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: files.weightData, userDefinedMetadata: json.userDefinedMetadata }),
    );
  } catch (e) {
    if (e instanceof RobustError) throw e;
    throw new RobustError(`${jsonPath}: cannot build the model (${(e as Error).message.split('\n')[0]})`);
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
type AddWeight = (this: tf.layers.Layer, name: string, shape: number[], ...rest: unknown[]) => tf.LayerVariable;
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
  const entry = { file, shapes: new Map(specs.map((w) => [w.name, w.shape])), total: specs.reduce((n, w) => n + size(w.shape), 0) };
  if (!stockAddWeight) {
    const stock = layerProto.addWeight;
    stockAddWeight = stock;
    layerProto.addWeight = function (this: tf.layers.Layer, name: string, shape: number[], ...rest: unknown[]) {
      let refusal: string | undefined;
      for (const m of activeManifests) {
        const want = m.shapes.get(`${this.name}/${name}`);
        const dims = `[${shape.join(', ')}]`;
        if (want && want.join() !== shape.join()) refusal ??= `${m.file}: layer ${this.name} makes weight ${name} of shape ${dims} but the weights manifest has [${want.join(', ')}]`;
        else if (!want && !(size(shape) <= m.total)) refusal ??= `${m.file}: layer ${this.name} declares a weight ${name} of shape ${dims}, larger than all the weights in the manifest`;
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

export function readState<T>(dir: string): T | null {
  const f = path.join(dir, 'state.json');
  return fs.existsSync(f) ? readJsonFile<T>(f, `${f}: no such file`, { what: 'training state' }) : null;
}

export function readOptimizerState(dir: string, shapes: number[][]): Float32Array[] | null {
  const f = path.join(dir, 'optimizer.bin');
  if (!fs.existsSync(f)) return null;
  const buf = readRegularFile(f, { maxBytes: 4 * shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0), what: 'optimizer state for this model' });
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of shapes) {
    const n = s.reduce((a, b) => a * b, 1);
    out.push(all.slice(o, o + n));
    o += n;
  }
  if (o !== all.length) throw new RobustError(`${f}: optimizer state does not match the model`);
  return out;
}
