/** Shared fixtures for CLI tests: running the built `robust` and a tiny untrained checkpoint. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { initBackend } from '../../backend/index.js';
import { createModel } from '../../models/zoo.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { loadData } from '../../data/index.js';
import { ROOT, tmpDir } from '../helpers.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');
const BATCH = path.join(ROOT, 'test', 'cli', 'batch-driver.mjs');

export function robust(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** how long the command took in the batch */
  ms: number;
  /** each `watch` path before and after the command: a file's SHA-256, a folder's entry count */
  watched: [string[], string[]];
}

/**
 * Several command lines in one `robust` process (batch-driver.mjs), in order: for checks of what a
 * command prints and returns, where a process each only paid the start-up ~2 s of CPU over again.
 */
export function robustBatch(
  runs: { args: string[]; env?: Record<string, string>; watch?: string[] }[],
): Run[] {
  const r = spawnSync(process.execPath, [BATCH], {
    input: JSON.stringify(runs),
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 256 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`batch driver exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** `make()` on first call, its result after: a batch shared by the tests that read it. */
export function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

/** A width-4 ResNet-20 for the bundled sample, saved with the metadata training writes. */
export async function tinyCheckpoint(name: string, seed = 1): Promise<string> {
  await initBackend({ backend: 'wasm' });
  const data = await loadData('sample');
  const model = createModel('resnet20', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    mean: data.mean,
    std: data.std,
    width: 4,
    seed,
  });
  model.setUserDefinedMetadata({
    robust: {
      model: 'resnet20',
      width: 4,
      data: data.name,
      classes: data.classes,
      defense: 'none',
    },
  });
  const dir = path.join(tmpDir(name), 'ckpt');
  await saveCheckpoint(dir, model);
  model.dispose();
  return dir;
}
