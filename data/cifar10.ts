/** CIFAR-10 in the official binary layout, from files: its archive or a folder of batches. */
import fs from 'node:fs';
import path from 'node:path';
import { RobustError } from '../util/errors.js';
import type { DataSplit } from './dataset.js';
import {
  BATCH_BYTES,
  CIFAR10_CLASSES,
  MAX_ARCHIVE_BYTES,
  TEST_FILE,
  TRAIN_FILES,
  checkCifarBatch,
  parseCifarBatches,
} from './cifar10-records.js';
import { readTarMembers, type TarLimits } from './archive.js';
import { readRegularFile } from '../util/read-file.js';

export {
  BATCH_BYTES,
  CIFAR10_CLASSES,
  CIFAR10_MD5,
  CIFAR10_URL,
  MAX_ARCHIVE_BYTES,
  TEST_FILE,
  TRAIN_FILES,
  checkCifarBatch,
  parseCifarBatches,
  parseCifarRecords,
} from './cifar10-records.js';

const ARCHIVE_LIMITS: TarLimits = {
  wanted: new Set([...TRAIN_FILES, TEST_FILE]),
  maxMemberBytes: BATCH_BYTES,
  memberWhat: 'CIFAR-10 batch',
  maxBytes: MAX_ARCHIVE_BYTES,
  what: 'CIFAR-10 archive',
};

/** The batch files of a CIFAR-10 .tar.gz and the archive's MD5, read in memory (nothing is extracted). */
export async function readCifarArchive(
  file: string,
): Promise<{ files: Map<string, Uint8Array>; md5: string }> {
  const { members, md5 } = await readTarMembers(file, { ...ARCHIVE_LIMITS, md5: true });
  return { files: members, md5: md5! };
}

/** The batch files of a CIFAR-10 .tar.gz (see `readTarMembers` for what is refused). */
export async function readFromArchive(file: string): Promise<Map<string, Uint8Array>> {
  return (await readTarMembers(file, ARCHIVE_LIMITS)).members;
}

/** The batch files of a folder: the official layout's cifar-10-batches-bin/ inside it, or the folder itself. */
export function readFromDir(dir: string): Map<string, Uint8Array> {
  return readCifar10Dir(dir).files;
}

/** The batch files of a folder and the folder they were read from (`dir` or its cifar-10-batches-bin/). */
export function readCifar10Dir(dir: string): { root: string; files: Map<string, Uint8Array> } {
  const inner = path.join(dir, 'cifar-10-batches-bin');
  const root = fs.existsSync(inner) ? inner : dir;
  // Batches in both places would leave the choice to the loader: a planted copy must not win silently.
  const twice =
    root === inner
      ? [...TRAIN_FILES, TEST_FILE].find((f) => fs.existsSync(path.join(dir, f)))
      : undefined;
  if (twice)
    throw new RobustError(
      `${dir}: holds ${twice} both directly and in cifar-10-batches-bin/: which one is meant is ambiguous`,
    );
  const found = new Map<string, Uint8Array>();
  for (const f of [...TRAIN_FILES, TEST_FILE]) {
    const p = path.join(root, f);
    if (!fs.existsSync(p)) continue;
    found.set(f, readRegularFile(p, { maxBytes: BATCH_BYTES, what: 'CIFAR-10 batch' }));
  }
  return { root, files: found };
}

/**
 * What loadCifar10 refuses in the batch files it read from `source`: one missing, a size but the
 * official one (10,000 records), a label over 9 — checked without decoding pixels.
 */
export function checkCifar10Files(files: Map<string, Uint8Array>, source: string): void {
  const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !files.has(f));
  if (missing.length)
    throw new RobustError(`${source}: not a CIFAR-10 binary set (missing ${missing.join(', ')})`);
  for (const f of [...TRAIN_FILES, TEST_FILE]) checkCifarBatch(files.get(f)!, `${source}: ${f}`);
}

/** Loads CIFAR-10 from a folder of .bin batches or from the official .tar.gz. */
export async function loadCifar10(source: string): Promise<DataSplit> {
  if (!fs.existsSync(source)) throw new RobustError(`${source}: no such file or folder`);
  const files = fs.statSync(source).isDirectory()
    ? readFromDir(source)
    : await readFromArchive(source);
  checkCifar10Files(files, source);
  const train = parseCifarBatches(
    TRAIN_FILES.map((f) => files.get(f)!),
    `${source}: ${TRAIN_FILES.join('+')}`,
  );
  const test = parseCifarBatches([files.get(TEST_FILE)!], `${source}: ${TEST_FILE}`);
  return {
    name: 'cifar10',
    classes: CIFAR10_CLASSES,
    train,
    test,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
  };
}
