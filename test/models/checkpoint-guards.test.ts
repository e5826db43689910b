/**
 * A checkpoint is checked against what it declares before anything large is allocated, and what
 * is evaluated is fingerprinted from the bytes actually loaded.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { loadModel, modelFingerprint, saveCheckpoint } from '../../models/checkpoint.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

let dir: string;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const input = tf.input({ shape: [784] });
  const model = tf.model({
    inputs: input,
    outputs: tf.layers.dense({ units: 10, name: 'logits' }).apply(input) as tf.SymbolicTensor,
  });
  dir = path.join(tmpDir('ckpt-guards'), 'ok');
  await saveCheckpoint(dir, model);
  model.dispose();
});

/** A copy of the checkpoint with model.json edited. */
function edited(name: string, edit: (json: string) => string): string {
  const d = path.join(path.dirname(dir), name);
  fs.cpSync(dir, d, { recursive: true });
  fs.writeFileSync(
    path.join(d, 'model.json'),
    edit(fs.readFileSync(path.join(d, 'model.json'), 'utf8')),
  );
  return d;
}

describe('loadModel guards', () => {
  it('refuses a layer larger than its manifest before allocating it (a tiny model.json declaring a huge Dense)', async () => {
    // 784 × 400000 floats = 1.25 GB if tfjs were allowed to build the layer
    const huge = edited('huge', (j) => j.replace('"units":10', '"units":400000'));
    const rss = process.memoryUsage().rss;
    const before = tf.memory().numBytes;
    await expect(loadModel(huge)).rejects.toThrow(RobustError);
    await expect(loadModel(huge)).rejects.toThrow(
      /layer logits makes weight kernel of shape \[784, 400000\] but the weights manifest has \[784, 10\]/,
    );
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 2 ** 20);
    expect(tf.memory().numBytes).toBe(before);
  });

  it('refuses a weight the manifest does not name when it is larger than the whole manifest', async () => {
    const renamed = edited('renamed', (j) =>
      j.replace('"units":10', '"units":300000').replaceAll('"name":"logits/', '"name":"other/'),
    );
    await expect(loadModel(renamed)).rejects.toThrow(/larger than all the weights in the manifest/);
  });

  it('restores tfjs after loading: layers built later are not checked against any manifest', async () => {
    await loadModel(dir).then((m) => m.dispose());
    const big = tf.layers.dense({ units: 5000, inputShape: [784] });
    const m = tf.sequential({ layers: [big] });
    expect(m.countParams()).toBe(784 * 5000 + 5000);
    m.dispose();
  });

  it('fingerprints the topology, metadata and weight bytes loaded', async () => {
    const a = await loadModel(dir);
    const b = await loadModel(path.join(dir, 'model.json'));
    const w = path.join(path.dirname(dir), 'weights-changed');
    fs.cpSync(dir, w, { recursive: true });
    const bytes = fs.readFileSync(path.join(w, 'weights.bin'));
    bytes[7] ^= 1;
    fs.writeFileSync(path.join(w, 'weights.bin'), bytes);
    const c = await loadModel(w);
    const d = await loadModel(
      edited('activation', (j) => j.replace('"activation":"linear"', '"activation":"softmax"')),
    );
    const fa = modelFingerprint(a);
    expect(fa).toMatch(/^[0-9a-f]{64}$/);
    expect(modelFingerprint(b)).toBe(fa); // the folder or its model.json: the same model
    expect(modelFingerprint(c)).not.toBe(fa);
    expect(modelFingerprint(d)).not.toBe(fa);
    expect(
      modelFingerprint(tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] })),
    ).toBeUndefined();
    [a, b, c, d].forEach((m) => m.dispose());
  });
});
