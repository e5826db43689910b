import fs from 'node:fs';
import path from 'node:path';
import { f16round } from '@petamoriken/float16';
import { beforeAll, describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { float16Model } from '../../models/float16-weights.js';
import { buildLayersModel } from '../../models/layers-build.js';
import { modelFilesFrom, type ModelFiles } from '../../models/model-bytes.js';
import { readModelFiles } from '../../models/model-files.js';
import { createModel } from '../../models/zoo.js';
import { SUITE_THREADS, tmpDir } from '../helpers.js';

/** The float16 model as a loader sees it: its model.json and weights.bin read back. */
const reread = (f: { json: ModelFiles['json']; weights: Uint8Array }) =>
  modelFilesFrom('float16/model.json', f.json, (name) => {
    expect(name).toBe('weights.bin');
    return f.weights;
  });

describe('float16Model', () => {
  let files: ModelFiles;
  let model: tf.LayersModel;
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
    model = createModel('resnet20', {
      inputShape: [8, 8, 3],
      numClasses: 4,
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      width: 4,
    });
    const dir = path.join(tmpDir('f16'), 'model');
    await saveCheckpoint(dir, model);
    files = readModelFiles(dir);
  });

  it('stores each float32 weight as its nearest float16, which tfjs decodes on load', async () => {
    const half = float16Model(files);
    expect(half.weights.length).toBe(files.weightData.byteLength / 2);
    const loaded = await buildLayersModel(reread(half));
    const [a, b] = [model.getWeights(), loaded.getWeights()];
    expect(b.length).toBe(a.length);
    a.forEach((w, i) => {
      const want = Float32Array.from(w.dataSync(), f16round);
      expect(b[i].dataSync(), w.name).toEqual(want);
    });
    // and it computes what the original does, to float16's precision
    const x = tf.randomUniform([4, 8, 8, 3], 0, 1, 'float32', 3);
    const [y32, y16] = [model, loaded].map((m) => (m.predict(x) as tf.Tensor).dataSync());
    const scale = Math.max(...y32.map(Math.abs));
    y32.forEach((v, i) => expect(Math.abs(v - y16[i])).toBeLessThan(1e-2 * scale));
    expect(reread(half).sha256).not.toBe(files.sha256); // another model identity: cached results do not carry over
    tf.dispose([x]);
    loaded.dispose();
  });

  it('keeps int32 and bool weights as they are', () => {
    const bytes = new Uint8Array([
      ...new Uint8Array(Float32Array.of(1.5, -2).buffer),
      ...new Uint8Array(Int32Array.of(7).buffer),
      1,
      0,
      1,
    ]);
    const f = float16Model({
      jsonPath: 'x/model.json',
      json: { modelTopology: {}, weightsManifest: [] },
      specs: [
        { name: 'w', shape: [2], dtype: 'float32' },
        { name: 'n', shape: [1], dtype: 'int32' },
        { name: 'b', shape: [3], dtype: 'bool' },
      ],
      weightData: bytes.buffer,
      sha256: '',
    });
    expect(Array.from(f.weights)).toEqual([0x00, 0x3e, 0x00, 0xc0, 7, 0, 0, 0, 1, 0, 1]);
    const specs = (f.json.weightsManifest as { weights: tf.io.WeightsManifestEntry[] }[])[0]
      .weights;
    expect(specs.map((s) => s.quantization?.dtype ?? null)).toEqual(['float16', null, null]);
  });

  it('refuses weights already quantized and values beyond float16', () => {
    const half = float16Model(files);
    expect(() => float16Model(reread(half))).toThrow(/already quantized \(float16\)/);
    const big = new Float32Array(files.weightData.slice(0));
    big[5] = 1e5;
    expect(() => float16Model({ ...files, weightData: big.buffer })).toThrow(
      /holds 100000, beyond float16's range/,
    );
    // infinities and NaN are float16 values: kept
    big[5] = Infinity;
    expect(() => float16Model({ ...files, weightData: big.buffer })).not.toThrow();
    expect(fs.existsSync(files.jsonPath)).toBe(true);
  });
});
