/**
 * Checkpoints: a folder with the standard TF.js LayersModel files (model.json + weights.bin,
 * readable by tf.loadLayersModel) plus, for training runs, state.json and optimizer.bin.
 * Every write builds a new folder and renames it into place, so a kill never leaves half of one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { RobustError } from '../util/errors.js';
import { writeDirAtomic } from '../util/atomic.js';
import { readJsonFile } from '../util/json-file.js';
import { readRegularFile } from '../util/read-file.js';

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

/** The layer classes robust builds and accepts from a file: anything else is refused before loading. */
export const KNOWN_LAYERS = new Set([
  'InputLayer', 'Rescaling', 'Conv2D', 'BatchNormalization', 'ReLU', 'Activation', 'Add', 'GlobalAveragePooling2D', 'Dropout', 'Dense', 'Flatten',
]);

type NodeRef = [string, number, number, ...unknown[]];
const MAX_LAYERS = 5000;
interface LayerEntry { name: string; class_name: string; inbound_nodes: NodeRef[][] }

/**
 * Checks a functional topology before tfjs sees it: only known layer classes, unique names, and a
 * layer graph whose every call can be made. tfjs's Container.fromConfig re-queues a call whose
 * input does not exist yet and loops forever when it never will (a misspelt inbound layer, a node
 * index past the end, a cycle), so the same queue is run here, stopping when a pass makes no progress.
 */
function checkTopology(jsonPath: string, topology: object): void {
  const bad = (why: string) => new RobustError(`${jsonPath}: ${why}`);
  const t = topology as { class_name?: unknown; config?: { layers?: unknown } };
  if ((t.class_name !== 'Model' && t.class_name !== 'Functional') || !Array.isArray(t.config?.layers)) {
    throw bad('not a functional TF.js model (robust saves class Model with a layers list)');
  }
  const layers = t.config.layers as Partial<LayerEntry>[];
  // The call-order check below and tfjs's own build are quadratic in the worst order: a few MB of
  // JSON listing 20,000 layers backwards kept both busy for hours. The largest common vision nets have ~1,000.
  if (layers.length > MAX_LAYERS) throw bad(`${layers.length} layers, more than robust loads (${MAX_LAYERS})`);
  const unknown = [...new Set(layers.map((l) => String(l?.class_name)))].filter((c) => !KNOWN_LAYERS.has(c));
  if (unknown.length > 0) throw bad(`unsupported layer class ${unknown.join(', ')} (robust loads only ${[...KNOWN_LAYERS].join(', ')})`);
  const isRef = (r: unknown): r is NodeRef =>
    Array.isArray(r) && typeof r[0] === 'string' && Number.isInteger(r[1]) && (r[1] as number) >= 0 && Number.isInteger(r[2]) && (r[2] as number) >= 0;
  const nodes = new Map<string, number>(); // layer name → calls made so far
  const pending: { layer: string; inputs: NodeRef[] }[] = [];
  for (const l of layers) {
    if (typeof l.name !== 'string' || nodes.has(l.name)) throw bad(`layer name ${JSON.stringify(l.name)} is missing or repeated`);
    if (!Array.isArray(l.inbound_nodes) || !l.inbound_nodes.every((call) => Array.isArray(call) && call.every(isRef))) {
      throw bad(`layer ${l.name} has malformed inbound_nodes`);
    }
    nodes.set(l.name, l.class_name === 'InputLayer' ? 1 : 0); // an input layer's node exists from the start
    for (const inputs of l.inbound_nodes) pending.push({ layer: l.name, inputs });
  }
  while (pending.length > 0) {
    const before = pending.length;
    for (let i = 0; i < pending.length; ) {
      const { layer, inputs } = pending[i];
      if (inputs.every(([from, node]) => (nodes.get(from) ?? 0) > node)) {
        if (inputs.length > 0) nodes.set(layer, nodes.get(layer)! + 1);
        pending.splice(i, 1);
      } else i++;
    }
    if (pending.length === before) {
      throw bad(`layer ${pending[0].layer} takes an input that no layer produces (a missing layer or node, or a cycle)`);
    }
  }
}

/** Reads model.json + weight shards from a folder (or a model.json path) into a LayersModel. */
export async function loadModel(location: string): Promise<tf.LayersModel> {
  const jsonPath = location.endsWith('.json') ? location : path.join(location, 'model.json');
  const json = readJsonFile<{ modelTopology?: object; weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; userDefinedMetadata?: {} }>(
    jsonPath,
    `${jsonPath}: no such file (expected a checkpoint folder with model.json)`,
  );
  if (!json || typeof json !== 'object' || typeof json.modelTopology !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) throw new RobustError(`${jsonPath}: not a TF.js layers model (no modelTopology/weightsManifest)`);
  checkTopology(jsonPath, json.modelTopology);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  const malformed = (why: string) => new RobustError(`${jsonPath}: malformed weightsManifest (${why})`);
  for (const group of json.weightsManifest as unknown[]) {
    const g = group as { paths?: unknown; weights?: unknown };
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw malformed('each group needs paths and weights');
    for (const w of g.weights as { name?: unknown; shape?: unknown; dtype?: unknown }[]) {
      const shapeOk = Array.isArray(w?.shape) && w.shape.every((d) => Number.isInteger(d) && d >= 0);
      if (typeof w?.name !== 'string' || !shapeOk || (w.dtype !== undefined && w.dtype !== 'float32')) throw malformed(`bad entry ${JSON.stringify(w).slice(0, 80)}`);
      specs.push(w as tf.io.WeightsManifestEntry);
    }
    for (const p of g.paths) {
      // Shards live beside model.json: plain file names only, never a path that leads elsewhere.
      if (typeof p !== 'string' || p === '' || /[\\/]/.test(p) || p === '..' || p === '.') throw malformed(`shard path ${JSON.stringify(p)} is not a file name in the checkpoint folder`);
      const f = path.join(path.dirname(jsonPath), p);
      // Regular files only, 1 GiB at most (far above any model here): never /dev/zero or a FIFO.
      shards.push(readRegularFile(f, { maxBytes: 2 ** 30, what: 'weight shard', missing: `${f}: weight shard missing` }));
    }
  }
  const data = Buffer.concat(shards);
  const expected = specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (data.length !== expected) throw new RobustError(`${jsonPath}: weights hold ${data.length} bytes, the manifest needs ${expected}`);
  let model: tf.LayersModel;
  const release = guardWeights(jsonPath, specs);
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
        userDefinedMetadata: json.userDefinedMetadata,
      }),
    );
  } catch (e) {
    if (e instanceof RobustError) throw e;
    throw new RobustError(`${jsonPath}: cannot build the model (${(e as Error).message})`);
  } finally {
    release();
  }
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify([json.modelTopology, specs, json.userDefinedMetadata ?? null]));
  hash.update(data);
  fingerprints.set(model, hash.digest('hex'));
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
