/**
 * Reading a TF.js model folder (model.json + weight shards), LayersModel or GraphModel alike, with
 * every size checked before anything is allocated and a SHA-256 over all that was read: the model
 * identity cached results are keyed on.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { RobustError } from '../util/errors.js';
import { readJsonFile } from '../util/json-file.js';
import { readRegularFile } from '../util/read-file.js';

export interface ModelFiles {
  jsonPath: string;
  /** model.json as parsed. */
  json: {
    format?: unknown;
    modelTopology?: object;
    userDefinedMetadata?: Record<string, unknown>;
    signature?: unknown;
    [key: string]: unknown;
  };
  specs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
  /** SHA-256 over model.json's content and the weight bytes. */
  sha256: string;
}

// Bytes per stored element, by the dtype the bytes are in (a quantized weight's quantization dtype).
const STORED_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };
const WEIGHT_DTYPES = new Set(['float32', 'int32', 'bool']);
const MAX_SHARD_BYTES = 2 ** 30;
const MAX_TOTAL_BYTES = 2 ** 31;

/** model.json of a folder, or the path itself when it names a .json file. */
export const modelJsonPath = (location: string): string => (location.endsWith('.json') ? location : path.join(location, 'model.json'));

/** The model.json and weights at `location` (a folder or its model.json), checked. */
export function readModelFiles(location: string): ModelFiles {
  const jsonPath = modelJsonPath(location);
  const json = readJsonFile<ModelFiles['json']>(jsonPath, `${jsonPath}: no such file (expected a model folder with model.json)`);
  if (!json || typeof json !== 'object' || typeof json.modelTopology !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new RobustError(`${jsonPath}: not a TF.js model (no modelTopology/weightsManifest)`);
  }
  const malformed = (why: string) => new RobustError(`${jsonPath}: malformed weightsManifest (${why})`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  let read = 0;
  for (const group of json.weightsManifest as unknown[]) {
    const g = group as { paths?: unknown; weights?: unknown };
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw malformed('each group needs paths and weights');
    for (const w of g.weights as { name?: unknown; shape?: unknown; dtype?: unknown; quantization?: { dtype?: unknown } }[]) {
      const shapeOk = Array.isArray(w?.shape) && w.shape.every((d) => Number.isInteger(d) && d >= 0);
      const dtype = w?.dtype ?? 'float32';
      const stored = w?.quantization === undefined ? dtype : w.quantization?.dtype;
      if (typeof w?.name !== 'string' || !shapeOk || !WEIGHT_DTYPES.has(String(dtype)) || !(String(stored) in STORED_BYTES)) throw malformed(`bad entry ${JSON.stringify(w).slice(0, 80)}`);
      specs.push(w as tf.io.WeightsManifestEntry);
    }
    for (const p of g.paths) {
      // Shards live beside model.json: plain file names only, never a path that leads elsewhere.
      if (typeof p !== 'string' || p === '' || /[\\/]/.test(p) || p === '..' || p === '.') throw malformed(`shard path ${JSON.stringify(p)} is not a file name in the model folder`);
      const f = path.join(path.dirname(jsonPath), p);
      // Regular files only, bounded (far above any model here): never /dev/zero or a FIFO.
      const shard = readRegularFile(f, { maxBytes: MAX_SHARD_BYTES, what: 'weight shard', missing: `${f}: weight shard missing` });
      read += shard.length;
      if (read > MAX_TOTAL_BYTES) throw new RobustError(`${jsonPath}: weights larger than ${MAX_TOTAL_BYTES} bytes, more than robust loads`);
      shards.push(shard);
    }
  }
  const data = Buffer.concat(shards);
  const expected = specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * STORED_BYTES[String(w.quantization?.dtype ?? w.dtype ?? 'float32')], 0);
  if (data.length !== expected) throw new RobustError(`${jsonPath}: weights hold ${data.length} bytes, the manifest needs ${expected}`);
  const hash = crypto.createHash('sha256');
  // The layout robust's checkpoints have always been hashed with (cached results stay valid); a graph's signature (its named inputs and outputs) joins it.
  const described: unknown[] = [json.modelTopology, specs, json.userDefinedMetadata ?? null];
  if (json.signature !== undefined) described.push(json.signature);
  hash.update(JSON.stringify(described));
  hash.update(data);
  return { jsonPath, json, specs, weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer, sha256: hash.digest('hex') };
}

/** Elements of all weights in a manifest. */
export const weightCount = (specs: tf.io.WeightsManifestEntry[]): number => specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
