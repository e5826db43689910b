/** Shared fixtures for CLI tests: running the built `robust` and a tiny untrained checkpoint. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { initBackend } from '../../backend/index.js';
import { createModel } from '../../models/zoo.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { loadData } from '../../data/index.js';
import { ROOT, tmpDir } from '../helpers.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');

export function robust(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
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
