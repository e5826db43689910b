/**
 * BN folding rebuilds the zoo architecture the metadata names, so it is only sound when the loaded
 * layers are exactly that architecture. Property: whatever single change a checkpoint's topology
 * carries, the classifier evaluation uses computes the logits of the model as stored.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import tf from '#tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { createModel, ZOO } from '../../models/zoo.js';
import { loadModel, saveCheckpoint } from '../../models/checkpoint.js';
import { foldedClassifier } from '../../models/fold.js';
import { Rng } from '../../util/rng.js';
import { tmpDir } from '../helpers.js';
import { robust, tinyCheckpoint } from '../cli/fixtures.js';

let dir: string;
let x: tf.Tensor4D;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const m = createModel('resnet20', {
    inputShape: [8, 8, 3],
    numClasses: 10,
    mean: [0.4, 0.5, 0.6],
    std: [0.2, 0.25, 0.3],
    width: 4,
    seed: 5,
    dropout: 0.2,
    blockDropout: 0.1,
  });
  m.setUserDefinedMetadata({ robust: { model: 'resnet20', width: 4 } });
  const rng = new Rng(3);
  for (const l of m.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const [g, b, mu, v] = l.getWeights();
    const r = (t: tf.Tensor, lo: number, hi: number) =>
      tf.tensor(
        Float32Array.from({ length: t.size }, () => lo + (hi - lo) * rng.next()),
        t.shape,
      );
    l.setWeights([r(g, 0.5, 1.5), r(b, -0.3, 0.3), r(mu, -0.5, 0.5), r(v, 0.2, 2)]);
  }
  dir = path.join(tmpDir('fold-verified'), 'base');
  await saveCheckpoint(dir, m);
  m.dispose();
  x = tf.tensor4d(
    Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.next()),
    [4, 8, 8, 3],
  );
});

type Topology = {
  modelTopology: {
    config: {
      layers: {
        name: string;
        class_name: string;
        config: Record<string, unknown>;
        inbound_nodes: unknown[][][];
      }[];
    };
  };
  userDefinedMetadata: { robust: Record<string, unknown> };
};

/** Single changes a checkpoint's file may carry that keep it loadable. */
const mutations: Record<string, (t: Topology, pick: number) => boolean> = {
  dilation: (t, pick) =>
    setOn(
      t,
      'Conv2D',
      pick,
      (c) => (c.dilation_rate = [2, 2]),
      (c) => String(c.strides) === '1,1',
    ),
  'softmax head': (t) => setOn(t, 'Dense', 0, (c) => (c.activation = 'softmax')),
  'conv activation': (t, pick) => setOn(t, 'Conv2D', pick, (c) => (c.activation = 'tanh')),
  'BN epsilon': (t, pick) => setOn(t, 'BatchNormalization', pick, (c) => (c.epsilon = 0.5)),
  Rescaling: (t) => setOn(t, 'Rescaling', 0, (c) => (c.scale = [1, 2, 3])),
  'ReLU cap': (t, pick) => setOn(t, 'ReLU', pick, (c) => (c.max_value = 0.1)),
  'width in the metadata': (t) => ((t.userDefinedMetadata.robust.width = 8), true),
  'architecture in the metadata': (t) => ((t.userDefinedMetadata.robust.model = 'resnet32'), true),
  'a shortcut dropped': (t, pick) => {
    // an Add with an identity shortcut reads its residual branch twice: every layer stays in use
    const adds = t.modelTopology.config.layers.filter(
      (l) => l.class_name === 'Add' && /(_out|stem_relu)$/.test(String(l.inbound_nodes[0][1][0])),
    );
    const add = adds[pick % adds.length];
    add.inbound_nodes[0][1] = add.inbound_nodes[0][0];
    return true;
  },
};

function setOn(
  t: Topology,
  cls: string,
  pick: number,
  f: (c: Record<string, unknown>) => void,
  where = (_: Record<string, unknown>) => true,
): boolean {
  const of = t.modelTopology.config.layers.filter((l) => l.class_name === cls && where(l.config));
  if (of.length === 0) return false;
  f(of[pick % of.length].config);
  return true;
}

async function logitsOf(f: (x: tf.Tensor4D) => tf.Tensor): Promise<Float32Array> {
  const y = f(x);
  const out = (await y.data()) as Float32Array;
  y.dispose();
  return out;
}

describe('BN folding only where the loaded graph is verified to match', () => {
  it('folds the unchanged checkpoint (dropout layers included) and every zoo family', async () => {
    const m = await loadModel(dir);
    const c = foldedClassifier(m);
    expect(c).not.toBeNull();
    c!.dispose!();
    m.dispose();
    for (const e of ZOO.filter((e) =>
      ['resnet18', 'resnet50', 'resnet20', 'preact-resnet18'].includes(e.name),
    )) {
      const z = createModel(e.name, {
        inputShape: [8, 8, 3],
        numClasses: 10,
        mean: [0, 0, 0],
        std: [1, 1, 1],
        width: 2,
      });
      z.setUserDefinedMetadata({ robust: { model: e.name, width: 2 } });
      const f = foldedClassifier(z);
      expect(f, e.name).not.toBeNull();
      f!.dispose!();
      z.dispose();
    }
  });

  it('property: for any single change to the topology, evaluation computes the stored model', async () => {
    const base = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as Topology;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(mutations)),
        fc.nat(40),
        async (name, pick) => {
          const t = structuredClone(base);
          if (!mutations[name](t, pick)) return;
          const d = path.join(path.dirname(dir), `m${n++}`);
          fs.cpSync(dir, d, { recursive: true });
          fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(t));
          const m = await loadModel(d);
          const c = foldedClassifier(m);
          const stored = await logitsOf((v) => m.predict(v) as tf.Tensor);
          const evaluated = c ? await logitsOf((v) => c.logits(v, 'inference')) : stored;
          let err = 0;
          for (let i = 0; i < stored.length; i++)
            err = Math.max(err, Math.abs(stored[i] - evaluated[i]));
          c?.dispose?.();
          m.dispose();
          expect(err, `${name} (pick ${pick})`).toBeLessThan(1e-4);
        },
      ),
      { numRuns: 40, seed: 11 },
    );
  });
});

describe('a checkpoint that is not the zoo model its metadata names', () => {
  it('is evaluated as stored: a softmax head raises the probabilities flag, with a note on stderr', async () => {
    const d = await tinyCheckpoint('softmax-head');
    const t = JSON.parse(fs.readFileSync(path.join(d, 'model.json'), 'utf8')) as Topology;
    setOn(t, 'Dense', 0, (c) => (c.activation = 'softmax'));
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(t));
    const out = tmpDir('softmax-eval');
    const r = robust([
      'eval',
      '--models',
      d,
      '--attacks',
      'fgsm',
      '--eps',
      '0.1',
      '--limit',
      '16',
      '--out',
      out,
      '--backend',
      'wasm',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/layers differ from resnet20 width 4 .*evaluated as stored/);
    expect(r.stdout).toMatch(/probabilities/);
  });
});
