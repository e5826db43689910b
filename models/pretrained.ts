/**
 * Trained checkpoints shipped in the package's `zoo/` folder, addressed as `zoo:NAME`.
 *
 * `zoo/index.json` lists each entry with how it was made (command, epochs, wall time, backend)
 * and the SHA-256 of its files; a file that does not match is refused, so a damaged install never
 * yields silently wrong results.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import { check, RobustError } from '../util/errors.js';
import {
  checkFields,
  int,
  leaf,
  matching,
  nested,
  num,
  object,
  oneOf,
  optional,
  str,
} from '../util/fields.js';
import { LIMITS } from '../util/limits.js';
import { readJsonFile } from '../util/json-file.js';
import { loadModel } from './checkpoint.js';

export interface PretrainedEntry {
  /** Used as `zoo:NAME`. */
  name: string;
  /** Zoo architecture (see `robust models`). */
  architecture: string;
  width?: number;
  data: string;
  defense: string;
  /** Adversarial training budget (Linf pixels), for adversarially trained entries. */
  eps?: number;
  /** The exact command that trained it (from a fresh clone, data prepared). */
  command: string;
  epochs: number;
  train_seconds: number;
  backend: string;
  /** Clean accuracy on the full test set at the end of training, from the training log. */
  test_acc: number;
  /**
   * Present when the weights ship as float16 (scripts/zoo-add.ts --float16): the clean accuracy on
   * the full test set of the run's float32 weights and of the shipped ones, both measured then.
   */
  weights?: { dtype: 'float16'; test_acc_float32: number; test_acc_float16: number };
  /** How the run went, where the numbers alone would mislead (e.g. code that got faster mid-run). */
  note?: string;
  sha256: Record<string, string>;
}

export const ZOO_PREFIX = 'zoo:';

/** The package's zoo folder (from dist/ or the sources), or $ROBUST_ZOO_DIR. */
export function pretrainedDir(): string {
  if (process.env.ROBUST_ZOO_DIR) return process.env.ROBUST_ZOO_DIR;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '..', '..', 'zoo'), path.resolve(here, '..', 'zoo')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'index.json'))) ?? candidates[0];
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/; // a plain name in its folder: no path, no '..'

/** The zoo's entries, each checked: a damaged index.json is one line, never a crash or a path outside the zoo. */
export function pretrainedEntries(): PretrainedEntry[] {
  const file = path.join(pretrainedDir(), 'index.json');
  if (!fs.existsSync(file)) {
    // a zoo folder the user named must hold one: listing nothing would look like an empty zoo
    check(
      !process.env.ROBUST_ZOO_DIR,
      `ROBUST_ZOO_DIR=${process.env.ROBUST_ZOO_DIR}: no zoo there (${file} is missing)`,
    );
    return [];
  }
  const index = readJsonFile<{ entries?: unknown }>(file, `${file}: no such file`);
  checkFields(index, { entries: leaf(Array.isArray, 'a list') }, `${file}: the index`);
  const entries = index.entries as PretrainedEntry[];
  entries.forEach((e, i) => {
    const where = `${file}: entries[${i}]`;
    checkFields(
      e,
      {
        name: matching(FILE_NAME, 'a plain folder name'),
        architecture: str,
        width: optional(int(1, LIMITS.width)),
        data: str,
        defense: str,
        eps: optional(num(0, 1)),
        command: str,
        epochs: int(0, 1e6),
        train_seconds: num(0, 1e9),
        backend: str,
        test_acc: num(0, 1),
        weights: optional(
          nested({
            dtype: oneOf('float16'),
            test_acc_float32: num(0, 1),
            test_acc_float16: num(0, 1),
          }),
        ),
        note: optional(str),
        sha256: object,
      },
      where,
    );
    for (const [f, h] of Object.entries(e.sha256)) {
      check(
        FILE_NAME.test(f) && typeof h === 'string' && /^[0-9a-f]{64}$/.test(h),
        `${where}.sha256: ${JSON.stringify(f)} must be a file name with a 64-digit hex SHA-256`,
      );
    }
    check(
      entries.findIndex((o) => o.name === e.name) === i,
      `${where}: name ${e.name} is listed twice`,
    );
  });
  return entries;
}

/** The image shape [height, width, channels] a zoo checkpoint takes (its model.json's input layer). */
export function pretrainedInputShape(entry: PretrainedEntry): [number, number, number] {
  const file = path.join(pretrainedDir(), entry.name, 'model.json');
  const json = readJsonFile<{
    modelTopology?: { config?: { layers?: { config?: { batch_input_shape?: unknown } }[] } };
  }>(file, `${file}: no such file`);
  const shape = json.modelTopology?.config?.layers?.[0]?.config?.batch_input_shape;
  check(
    Array.isArray(shape) &&
      shape.length === 4 &&
      shape.slice(1).every((d) => Number.isInteger(d) && d > 0),
    `${file}: its first layer has no input shape [null, height, width, channels]`,
  );
  return (shape as number[]).slice(1) as [number, number, number];
}

export const sha256 = (file: string) =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Folders whose files this process has already checked. */
const verified = new Set<string>();

/** `zoo:NAME` → its checked checkpoint folder; any other location is returned unchanged. */
export function resolvePretrained(location: string): string {
  if (!location.startsWith(ZOO_PREFIX)) return location;
  const name = location.slice(ZOO_PREFIX.length);
  const entries = pretrainedEntries();
  const entry = entries.find((e) => e.name === name);
  if (!entry)
    throw new RobustError(
      `unknown zoo model '${name}' (trained entries: ${entries.map((e) => e.name).join(', ') || 'none in this installation'})`,
    );
  const dir = path.join(pretrainedDir(), entry.name);
  if (verified.has(dir)) return dir;
  for (const [file, want] of Object.entries(entry.sha256)) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p))
      throw new RobustError(`${p}: missing from this installation of zoo:${name}`);
    if (sha256(p) !== want)
      throw new RobustError(`${p}: SHA-256 does not match zoo/index.json (damaged install?)`);
  }
  verified.add(dir);
  return dir;
}

/** A shipped trained model by name ("fmnist-resnet20w8" or "zoo:fmnist-resnet20w8"), hashes checked. */
export async function loadPretrained(name: string): Promise<tf.LayersModel> {
  return loadModel(resolvePretrained(name.startsWith(ZOO_PREFIX) ? name : ZOO_PREFIX + name));
}
