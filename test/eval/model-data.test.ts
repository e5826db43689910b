/** The data a model is evaluated on: fitted, checked, and never empty. */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { loadAnyModel } from '../../models/any-model.js';
import { loadDataForModel } from '../../eval/model-data.js';
import { npy, npz } from '../data/fixtures.js';
import { tmpDir } from '../helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

it('an empty test set is one line, not a division by zero later (hostile review)', async () => {
  const dir = tmpDir('model-data-empty');
  const net = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10 })],
  });
  await saveCheckpoint(path.join(dir, 'model'), net);
  net.dispose();
  const file = path.join(dir, 'empty.npz');
  fs.writeFileSync(
    file,
    npz({
      x: npy('|u1', [0, 28, 28, 1], new Uint8Array(0)),
      y: npy('|u1', [0], new Uint8Array(0)),
    }),
  );
  const m = await loadAnyModel(path.join(dir, 'model'), { note: () => {} });
  await expect(loadDataForModel(m, { data: `npz:${file}`, note: () => {} })).rejects.toThrow(
    /empty\.npz has no test images/,
  );
  m.dispose();
});
