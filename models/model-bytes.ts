/**
 * A TF.js model (model.json + weight shards), LayersModel or GraphModel alike, from its bytes: every
 * size checked before anything is allocated and a SHA-256 over all that was read, the model
 * identity cached results are keyed on. Where the bytes come from (a folder, files a page was
 * given) is the caller's: models/model-files.ts reads a folder.
 */
import type * as tf from '@tensorflow/tfjs';
import { RobustError } from '../util/errors.js';
import { sha256Hex } from '../util/platform.js';

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
const STORED_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};
const WEIGHT_DTYPES = new Set(['float32', 'int32', 'bool']);
export const MAX_SHARD_BYTES = 2 ** 30;
const MAX_TOTAL_BYTES = 2 ** 31;

/**
 * The model whose model.json (named `jsonPath` in messages) parsed to `json`, with each weight shard's
 * bytes from `readShard(fileName)` (which throws a RobustError for a missing shard), checked.
 */
export function modelFilesFrom(
  jsonPath: string,
  json: ModelFiles['json'],
  readShard: (name: string) => Uint8Array,
): ModelFiles {
  if (
    !json ||
    typeof json !== 'object' ||
    typeof json.modelTopology !== 'object' ||
    !json.modelTopology ||
    !Array.isArray(json.weightsManifest)
  ) {
    throw new RobustError(`${jsonPath}: not a TF.js model (no modelTopology/weightsManifest)`);
  }
  const malformed = (why: string) =>
    new RobustError(`${jsonPath}: malformed weightsManifest (${why})`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const shards: Uint8Array[] = [];
  let read = 0;
  for (const group of json.weightsManifest as unknown[]) {
    const g = group as { paths?: unknown; weights?: unknown };
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights))
      throw malformed('each group needs paths and weights');
    for (const w of g.weights as {
      name?: unknown;
      shape?: unknown;
      dtype?: unknown;
      quantization?: { dtype?: unknown };
    }[]) {
      const shapeOk =
        Array.isArray(w?.shape) && w.shape.every((d) => Number.isInteger(d) && d >= 0);
      const dtype = w?.dtype ?? 'float32';
      const stored = w?.quantization === undefined ? dtype : w.quantization?.dtype;
      if (
        typeof w?.name !== 'string' ||
        !shapeOk ||
        !WEIGHT_DTYPES.has(String(dtype)) ||
        !Object.hasOwn(STORED_BYTES, String(stored))
      )
        throw malformed(`bad entry ${JSON.stringify(w).slice(0, 80)}`);
      specs.push(w as tf.io.WeightsManifestEntry);
    }
    for (const p of g.paths) {
      // Shards live beside model.json: plain file names only, never a path that leads elsewhere.
      if (typeof p !== 'string' || p === '' || /[\\/]/.test(p) || p === '..' || p === '.')
        throw malformed(`shard path ${JSON.stringify(p)} is not a file name in the model folder`);
      const shard = readShard(p);
      if (shard.length > MAX_SHARD_BYTES)
        throw new RobustError(
          `${jsonPath}: weight shard ${p} is larger than ${MAX_SHARD_BYTES} bytes, more than robust loads`,
        );
      read += shard.length;
      if (read > MAX_TOTAL_BYTES)
        throw new RobustError(
          `${jsonPath}: weights larger than ${MAX_TOTAL_BYTES} bytes, more than robust loads`,
        );
      shards.push(shard);
    }
  }
  const expected = specs.reduce(
    (n, w) =>
      n +
      w.shape.reduce((a, b) => a * b, 1) *
        STORED_BYTES[String(w.quantization?.dtype ?? w.dtype ?? 'float32')],
    0,
  );
  if (read !== expected)
    throw new RobustError(
      `${jsonPath}: weights hold ${read} bytes, the manifest needs ${expected}`,
    );
  const data = new Uint8Array(read);
  let at = 0;
  for (const shard of shards) {
    data.set(shard, at);
    at += shard.length;
  }
  // The layout robust's checkpoints have always been hashed with (cached results stay valid); a graph's signature (its named inputs and outputs) joins it.
  const described: unknown[] = [json.modelTopology, specs, json.userDefinedMetadata ?? null];
  if (json.signature !== undefined) described.push(json.signature);
  return {
    jsonPath,
    json,
    specs,
    weightData: data.buffer,
    sha256: sha256Hex(JSON.stringify(described), data),
  };
}

/** A model given as files in memory (a page's file picker): model.json's name and bytes, and its shards by file name. */
export function modelFilesFromBytes(
  jsonPath: string,
  jsonBytes: Uint8Array,
  shards: ReadonlyMap<string, Uint8Array>,
): ModelFiles {
  let json: ModelFiles['json'];
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes));
  } catch (e) {
    throw new RobustError(
      `${jsonPath}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`,
    );
  }
  return modelFilesFrom(jsonPath, json, (name) => {
    const bytes = shards.get(name);
    if (!bytes)
      throw new RobustError(`${jsonPath}: weight shard ${name} missing (give it with model.json)`);
    return bytes;
  });
}

/** Elements of all weights in a manifest. */
export const weightCount = (specs: tf.io.WeightsManifestEntry[]): number =>
  specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
