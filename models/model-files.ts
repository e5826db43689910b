/**
 * Reading a TF.js model folder (model.json + weight shards beside it), checked and hashed as
 * models/model-bytes.ts does for any bytes.
 */
import path from 'node:path';
import { readJsonFile } from '../util/json-file.js';
import { readRegularFile } from '../util/read-file.js';
import { MAX_SHARD_BYTES, modelFilesFrom, type ModelFiles } from './model-bytes.js';

export type { ModelFiles } from './model-bytes.js';

/** model.json of a folder, or the path itself when it names a .json file. */
const modelJsonPath = (location: string): string =>
  location.endsWith('.json') ? location : path.join(location, 'model.json');

/** The model.json and weights at `location` (a folder or its model.json), checked. */
export function readModelFiles(location: string): ModelFiles {
  const jsonPath = modelJsonPath(location);
  const json = readJsonFile<ModelFiles['json']>(
    jsonPath,
    `${jsonPath}: no such file (expected a model folder with model.json)`,
  );
  return modelFilesFrom(jsonPath, json, (name) => {
    const f = path.join(path.dirname(jsonPath), name);
    // Regular files only, bounded (far above any model here): never /dev/zero or a FIFO.
    return readRegularFile(f, {
      maxBytes: MAX_SHARD_BYTES,
      what: 'weight shard',
      missing: `${f}: weight shard missing`,
    });
  });
}
