/** GraphModels through loadAnyModel: logits found in the graph, --output, preprocessing, refusals, and the CLI on one. */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { loadAnyModel } from '../../models/any-model.js';
import {
  efficientNetGraph,
  loadGraphFolder,
  mobilenetV2Graph,
  resnetGraph,
  type GraphFixture,
} from '../fixtures/graph-models.js';
import { tmpDir } from '../helpers.js';
import { robust } from '../cli/fixtures.js';

const quiet = { note: () => {} };
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

/** A fixture's model.json, edited. */
function edit(
  f: GraphFixture,
  change: (json: {
    modelTopology: {
      node: { name: string; op: string; input?: string[]; attr?: Record<string, unknown> }[];
    };
    weightsManifest: unknown[];
  }) => void,
): string {
  const file = path.join(f.dir, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(json);
  fs.writeFileSync(file, JSON.stringify(json));
  return f.dir;
}

describe('loadAnyModel on GraphModels', () => {
  for (const [name, make] of [
    ['MobileNet-V2', mobilenetV2Graph],
    ['ResNet', resnetGraph],
    ['EfficientNet', efficientNetGraph],
  ] as const) {
    it(`${name}: the logits are the final Softmax's input, with working input gradients`, async () => {
      const f = make(path.join(tmpDir(`graph-${name}`), 'model'), { size: 16 });
      const m = await loadAnyModel(f.dir, quiet);
      expect(m.kind).toBe('graph');
      expect(m.logits).toBe('softmax-input');
      expect(m.input).toContain(`logits: node ${f.logitsNode}`);
      expect(m.inputShape).toEqual(f.imageShape);
      expect(m.numClasses).toBe(f.classes);
      const reference = await loadGraphFolder(f.dir);
      const x = tf.randomUniform([3, ...f.imageShape], 0, 1, 'float32', 7) as tf.Tensor4D;
      const z = m.classifier.logits(x, 'inference');
      const probs = reference.execute(x) as tf.Tensor;
      expect(maxDiff(tf.softmax(z), probs)).toBeLessThan(1e-5);
      const g = tf.grad((v: tf.Tensor) =>
        m.classifier
          .logits(v as tf.Tensor4D, 'inference')
          .max(1)
          .sum(),
      )(x);
      expect(g.abs().max().dataSync()[0]).toBeGreaterThan(0);
      tf.dispose([x, z, probs, g]);
      reference.dispose();
      m.dispose();
    });
  }

  it('--output names a node; preprocessing goes in front of the graph; the fingerprint follows both', async () => {
    const f = resnetGraph(path.join(tmpDir('graph-out'), 'model'), { size: 16 });
    const plain = await loadAnyModel(f.dir, quiet);
    const named = await loadAnyModel(f.dir, { output: `${f.logitsNode}:0`, ...quiet });
    const scaled = await loadAnyModel(f.dir, { preprocess: { range: [-1, 1] }, ...quiet });
    expect(named.logits).toBe('named');
    expect(new Set([plain.fingerprint, named.fingerprint, scaled.fingerprint]).size).toBe(3);
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const [a, b, c] = [plain, named, scaled].map((m) => m.classifier.logits(x, 'inference'));
    expect(maxDiff(a, b)).toBe(0);
    const direct = tf.tidy(() =>
      plain.classifier.logits(x.mul(2).sub(1) as tf.Tensor4D, 'inference'),
    );
    expect(maxDiff(c, direct)).toBeLessThan(1e-5);
    tf.dispose([x, a, b, c, direct]);
    [plain, named, scaled].forEach((m) => m.dispose());
    await expect(loadAnyModel(f.dir, { output: 'nope', ...quiet })).rejects.toThrow(
      /no node named 'nope'/,
    );
  });

  it('refused in one line: control flow, a cycle, a missing input, a duplicate node, an int input, two outputs', async () => {
    const cases: [string, (j: Parameters<Parameters<typeof edit>[1]>[0]) => void, RegExp][] = [
      [
        'control flow',
        (j) => j.modelTopology.node.push({ name: 'loop', op: 'LoopCond', input: [] }),
        /dynamic control flow \(LoopCond\)/,
      ],
      [
        'a cycle',
        (j) => {
          const n = j.modelTopology.node.find((n) => n.op === 'Relu')!;
          n.input = [j.modelTopology.node.find((m) => m.op === 'Softmax')!.name];
        },
        /the graph has a cycle/,
      ],
      [
        'a missing input',
        (j) => void (j.modelTopology.node.find((n) => n.op === 'Relu')!.input = ['ghost']),
        /takes ghost, which is not in the graph/,
      ],
      [
        'a duplicate node',
        (j) => j.modelTopology.node.push({ ...j.modelTopology.node.find((n) => n.op === 'Relu')! }),
        /defined twice/,
      ],
      [
        'two outputs',
        (j) => {
          const relu = j.modelTopology.node.find((n) => n.op === 'Relu')!;
          delete (j as { signature?: unknown }).signature; // outputs then are the nodes nothing reads
          j.modelTopology.node.push({
            name: 'extra_out',
            op: 'Identity',
            input: [relu.name],
            attr: relu.attr,
          });
        },
        /2 outputs .*: name the logits node with output NODE$/,
      ],
    ];
    for (const [what, change, message] of cases) {
      const f = resnetGraph(path.join(tmpDir('graph-bad'), 'model'), { size: 8 });
      await expect(loadAnyModel(edit(f, change), quiet), what).rejects.toThrow(message);
    }
  });

  it('robust attack and eval run on a GraphModel folder, with its preprocessing in results.json', () => {
    const f = mobilenetV2Graph(path.join(tmpDir('graph-cli'), 'mobilenet'), { size: 28 });
    const out = path.join(tmpDir('graph-cli-eval'), 'results');
    // the fixture takes 28×28×3: the sample's gray 28×28 images are repeated to RGB
    const r = robust([
      'eval',
      '--models',
      f.dir,
      '--data',
      'sample',
      '--attacks',
      'fgsm,pgd:2',
      '--eps',
      '0,8/255',
      '--limit',
      '12',
      '--out',
      out,
      '--backend',
      'wasm',
      '--input-range',
      '0,255',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /note: .*mobilenet: GraphModel, inputs in \[0,255\]; logits: node .*, the input of Softmax node/,
    );
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.models[0]).toMatchObject({ arch: 'graph-model' });
    expect(json.models[0].input).toMatch(/images 28×28×1 → 28×28×3: gray → RGB/);
    expect(json.models[0].checks.zero_grad_share).toBeLessThan(1);
    const a = robust([
      'attack',
      '--model',
      f.dir,
      '--data',
      'sample',
      '--pgd',
      '--steps',
      '2',
      '--limit',
      '8',
      '--json',
      '--backend',
      'wasm',
      '--train-mode',
    ]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/a GraphModel has no training mode/);
  });
});

describe('GraphModel outputs named by --output (hostile review)', () => {
  it('name:k is output k of the node, never silently output 0; a constant, the input or a 4-D tensor is not logits', async () => {
    const f = resnetGraph(path.join(tmpDir('graph-named'), 'model'), { size: 8 });
    const zero = await loadAnyModel(f.dir, { output: `${f.logitsNode}:0`, ...quiet });
    expect(zero.numClasses).toBe(10);
    zero.dispose();
    await expect(loadAnyModel(f.dir, { output: `${f.logitsNode}:1`, ...quiet })).rejects.toThrow(
      /the graph has no tensor .*BiasAdd:1/,
    );
    await expect(loadAnyModel(f.dir, { output: f.input, ...quiet })).rejects.toThrow(
      /has shape \[1, 8, 8, 3\], not \[batch, classes\]/,
    );
    const json = JSON.parse(fs.readFileSync(path.join(f.dir, 'model.json'), 'utf8'));
    const relu = json.modelTopology.node.find((n: { op: string }) => n.op === 'Relu').name;
    const weight = json.modelTopology.node.find((n: { op: string }) => n.op === 'Const').name;
    await expect(loadAnyModel(f.dir, { output: relu, ...quiet })).rejects.toThrow(
      /has shape \[1, 8, 8, 16\], not \[batch, classes\]/,
    );
    await expect(loadAnyModel(f.dir, { output: weight, ...quiet })).rejects.toThrow(
      /does not depend on the input input_1: it cannot be the logits/,
    );
  });
});

it('an op without a gradient in tfjs is refused at load, by name, not mid-attack (hostile review)', async () => {
  // Cumprod's kernel has no gradient; a custom op stands in for such an op in a converted graph
  tf.registerOp('RobustTestCumprod', (node) => [tf.cumprod(node.inputs[0] as tf.Tensor, 3)]);
  const f = resnetGraph(path.join(tmpDir('graph-nograd'), 'model'), { size: 8 });
  edit(
    f,
    (j) => void (j.modelTopology.node.find((n) => n.op === 'Relu')!.op = 'RobustTestCumprod'),
  );
  await expect(loadAnyModel(f.dir, quiet)).rejects.toThrow(
    /op Cumprod has no gradient in TF.js: gradient attacks cannot run on this graph/,
  );
  tf.deregisterOp('RobustTestCumprod');
});
