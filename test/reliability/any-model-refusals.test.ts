/**
 * Issue #18's bad models and data through `robust eval`: each is one error line, a non-zero exit,
 * no stack trace, and nothing written to --out. (Their library-level cases are in
 * test/models/any-model.test.ts, graph-loader.test.ts and test/data/folder.test.ts; here: that the
 * command stops before it writes anything.)
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { resnetGraph } from '../fixtures/graph-models.js';
import { npy, npz, pattern, png } from '../data/fixtures.js';
import { robust } from '../cli/fixtures.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';

const L = tf.layers;
let root: string;
/** A Keras-style LayersModel for 28×28 gray images, 10 classes, softmax head. */
let foreign: string;
const models: Record<string, string> = {};
const data: Record<string, string> = {};

async function save(name: string, net: tf.LayersModel): Promise<string> {
  const dir = path.join(root, name);
  await saveCheckpoint(dir, net);
  net.dispose();
  return dir;
}

/** A copy of `dir` with its model.json edited. */
function edited(dir: string, name: string, edit: (json: Record<string, unknown>) => void): string {
  const copy = path.join(root, name);
  fs.cpSync(dir, copy, { recursive: true });
  const file = path.join(copy, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
  return copy;
}

type Layer = { class_name: string; config: Record<string, unknown> };
const layersOf = (json: Record<string, unknown>) =>
  (json.modelTopology as { config: { layers: Layer[] } }).config.layers;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  root = tmpDir('any-model-refusals');
  const conv = () =>
    L.conv2d({
      filters: 4,
      kernelSize: 3,
      strides: 2,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    });
  const head = () =>
    L.dense({
      units: 10,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    });
  foreign = await save(
    'foreign',
    tf.sequential({
      layers: [L.inputLayer({ inputShape: [28, 28, 1] }), conv(), L.flatten(), head()],
    }),
  );
  // a layer class tfjs does not have (a custom Keras layer)
  models.unknownLayer = edited(foreign, 'unknown-layer', (j) => {
    layersOf(j).find((l) => l.class_name === 'Conv2D')!.class_name = 'MyAttention';
  });
  // model.json says 3 input channels, the first convolution's weights hold 1
  models.channelsVsWeights = edited(foreign, 'channels-vs-weights', (j) => {
    layersOf(j)[0].config.batch_input_shape = [null, 28, 28, 3];
  });
  // inputs no image can be fitted to: 4 channels (RGBA), a flat vector
  models.fourChannels = await save(
    'four-channels',
    tf.sequential({
      layers: [L.inputLayer({ inputShape: [28, 28, 4] }), conv(), L.flatten(), head()],
    }),
  );
  models.flatInput = await save(
    'flat-input',
    tf.sequential({ layers: [L.inputLayer({ inputShape: [784] }), head()] }),
  );
  // a GraphModel with a real TF op that has no gradient in tfjs (Cumprod) in its path
  const graph = resnetGraph(path.join(root, 'graph-cumprod'), { size: 8 });
  const file = path.join(graph.dir, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const nodes = json.modelTopology.node as {
    name: string;
    op: string;
    input: string[];
    attr: Record<string, unknown>;
  }[];
  const relu = nodes.find((n) => n.op === 'Relu')!;
  // the axis, a Const: its value goes in the weights manifest and shard, as the converter stores it
  nodes.push({
    name: 'cumprod/axis',
    op: 'Const',
    input: [],
    attr: {
      value: { tensor: { dtype: 'DT_INT32', tensorShape: {} } },
      dtype: { type: 'DT_INT32' },
    },
  });
  json.weightsManifest[0].weights.push({ name: 'cumprod/axis', shape: [], dtype: 'int32' });
  fs.appendFileSync(
    path.join(graph.dir, json.weightsManifest[0].paths[0]),
    new Uint8Array(Int32Array.of(3).buffer),
  );
  Object.assign(relu, {
    op: 'Cumprod',
    input: [relu.input[0], 'cumprod/axis'],
    attr: {
      ...relu.attr,
      exclusive: { b: false },
      reverse: { b: false },
      Tidx: { type: 'DT_INT32' },
    },
  });
  fs.writeFileSync(file, JSON.stringify(json));
  models.noGradient = graph.dir;

  // data: labels beyond the model's 10 classes; an empty folder; images that do not decode
  const images = pattern(12 * 784, 3);
  data.labels12 = path.join(root, 'labels-0-11.npz');
  fs.writeFileSync(
    data.labels12,
    npz({
      x: npy('|u1', [12, 28, 28], images),
      y: npy('|u1', [12], { values: Array.from({ length: 12 }, (_, i) => i) }),
    }),
  );
  data.empty = path.join(root, 'empty');
  fs.mkdirSync(data.empty);
  const classFolders = (name: string, bad: [string, Uint8Array]) => {
    const dir = path.join(root, name);
    for (const c of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, c), { recursive: true });
      fs.writeFileSync(path.join(dir, c, '1.png'), png(28, 28, 1, images.subarray(0, 784)));
    }
    fs.writeFileSync(path.join(dir, 'b', bad[0]), bad[1]);
    return dir;
  };
  const good = png(28, 28, 1, images.subarray(784, 2 * 784));
  data.truncatedPng = classFolders('truncated-png', ['2.png', good.subarray(0, good.length >> 1)]);
  data.notAnImage = classFolders('not-an-image', [
    '2.jpg',
    new TextEncoder().encode('<html>not found</html>'),
  ]);
});

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const cases: [string, () => [string, string], RegExp][] = [
  [
    'an unknown layer class',
    () => [models.unknownLayer, 'sample'],
    /layer class MyAttention is not a built-in TF.js layer/,
  ],
  [
    'an op without a gradient in a GraphModel',
    () => [models.noGradient, 'sample'],
    /op Cumprod has no gradient in TF.js: gradient attacks cannot run on this graph/,
  ],
  [
    "input channels that do not match the model's weights",
    () => [models.channelsVsWeights, 'sample'],
    /channels-vs-weights/,
  ],
  [
    'a 4-channel input no image can be fitted to',
    () => [models.fourChannels, 'sample'],
    /cannot fit images to 4 channels/,
  ],
  [
    'a flat (non-image) input',
    () => [models.flatInput, 'sample'],
    /not \[batch, height, width, channels\]/,
  ],
  [
    'labels beyond the model’s classes',
    () => [foreign, `npz:${data.labels12}`],
    /npz:.*labels-0-11\.npz has label 11, but the model has 10 classes/,
  ],
  ['an empty folder', () => [foreign, `folder:${data.empty}`], /empty/],
  ['a truncated PNG', () => [foreign, `folder:${data.truncatedPng}`], /2\.png/],
  [
    'a file named .jpg that is not an image',
    () => [foreign, `folder:${data.notAnImage}`],
    /2\.jpg/,
  ],
];

describe('bad models and data through robust eval: one line, exit ≠ 0, nothing in --out', () => {
  for (const [what, args, message] of cases) {
    it(what, () => {
      const [model, spec] = args();
      const out = path.join(root, `out-${cases.findIndex((c) => c[0] === what)}`, 'results');
      const r = robust([
        'eval',
        '--models',
        model,
        '--data',
        spec,
        '--attacks',
        'fgsm',
        '--eps',
        '0.1',
        '--limit',
        '8',
        '--out',
        out,
        '--backend',
        'wasm',
      ]);
      // notes say how a model robust did not build is fed (printed before its data is read)
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('note: '));
      expect(r.code, r.stderr).not.toBe(0);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^robust: /);
      expect(lines[0]).toMatch(message);
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
      expect(r.stdout).toBe('');
      expect(fs.existsSync(out) ? fs.readdirSync(out, { recursive: true }) : []).toEqual([]);
    });
  }
});
