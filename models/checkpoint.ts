/**
 * Checkpoints: a folder with the standard TF.js LayersModel files (model.json + weights.bin,
 * readable by tf.loadLayersModel) plus, for training runs, state.json and optimizer.bin.
 * Every write builds a new folder and renames it into place, so a kill never leaves half of one.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { RobustError } from '../util/errors.js';
import { writeDirAtomic } from '../util/atomic.js';
import { readJsonFile } from '../util/json-file.js';
import { readRegularFile } from '../util/read-file.js';
import { readModelFiles } from './model-files.js';
import { buildLayersModel } from './layers-build.js';

export { modelFingerprint } from './layers-build.js';

interface SavedExtras {
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

export async function saveCheckpoint(
  dir: string,
  model: tf.LayersModel,
  extras: SavedExtras = {},
): Promise<void> {
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
    if (extras.state !== undefined)
      fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(extras.state, null, 2));
    if (extras.optimizer)
      fs.writeFileSync(path.join(tmp, 'optimizer.bin'), concatBuffers(extras.optimizer));
  });
}

/** Reads model.json + weight shards from a folder (or a model.json path) into a LayersModel. */
export async function loadModel(location: string): Promise<tf.LayersModel> {
  const files = readModelFiles(location);
  if (files.json.format === 'graph-model')
    throw new RobustError(
      `${files.jsonPath}: a GraphModel, not a LayersModel (robust attack/eval load both)`,
    );
  return buildLayersModel(files);
}

export function readState<T>(dir: string): T | null {
  const f = path.join(dir, 'state.json');
  return fs.existsSync(f)
    ? readJsonFile<T>(f, `${f}: no such file`, { what: 'training state' })
    : null;
}

export function readOptimizerState(dir: string, shapes: number[][]): Float32Array[] | null {
  const f = path.join(dir, 'optimizer.bin');
  if (!fs.existsSync(f)) return null;
  const buf = readRegularFile(f, {
    maxBytes: 4 * shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0),
    what: 'optimizer state for this model',
  });
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
