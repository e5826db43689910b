/** `robust attack` / `robust eval` on a LayersModel robust did not build, through the command line. */
import fs from 'node:fs';
import path from 'node:path';
import tf from '#tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { saveCheckpoint } from '../../models/checkpoint.js';
import { tmpDir, SUITE_THREADS } from '../helpers.js';
import { robust } from './fixtures.js';

let foreign: string;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', threads: SUITE_THREADS });
  // A Keras-style net for 28×28 gray images taking [0,255] inputs, ending in softmax, no robust metadata.
  const L = tf.layers;
  const net = tf.sequential({
    layers: [
      L.rescaling({ inputShape: [28, 28, 1], scale: 1 / 255 }),
      L.conv2d({
        filters: 4,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
      L.maxPooling2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
    ],
  });
  foreign = path.join(tmpDir('cli-foreign'), 'keras-model');
  await saveCheckpoint(foreign, net);
  net.dispose();
});

describe('a model robust did not build', () => {
  it('eval records its preprocessing and logits in results.json, and a changed --input-range is a different cache key', () => {
    const out = path.join(tmpDir('cli-foreign-eval'), 'results');
    const args = [
      'eval',
      '--models',
      foreign,
      '--data',
      'sample',
      '--attacks',
      'fgsm',
      '--eps',
      '0,8/255',
      '--limit',
      '16',
      '--out',
      out,
      '--backend',
      'wasm',
    ];
    const r = robust([...args, '--input-range', '0,255']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /note: .*keras-model: LayersModel, inputs in \[0,255\]; logits: the input of softmax in layer dense/,
    );
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.models[0].input).toMatch(/^inputs in \[0,255\]; logits: the input of softmax/);
    const again = robust([...args, '--input-range', '0,255']);
    expect((again.stderr.match(/\(reused\)/g) ?? []).length).toBe(2);
    const other = robust([...args, '--input-range', '-1,1']);
    expect(other.code).toBe(0);
    expect(other.stderr).not.toMatch(/\(reused\)/);
  });

  it('--labels predicted: clean accuracy 100% by construction, and the table says whose labels they are', () => {
    const out = path.join(tmpDir('cli-foreign-pred'), 'results');
    const r = robust([
      'eval',
      '--models',
      foreign,
      '--data',
      'sample',
      '--attacks',
      'fgsm',
      '--eps',
      '8/255',
      '--limit',
      '16',
      '--out',
      out,
      '--backend',
      'wasm',
      '--labels',
      'predicted',
      '--input-range',
      '0,255',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Labels of keras-model: the model's own clean predictions/);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(json.models[0].labels).toBe('predicted');
    expect(json.models[0].clean_acc).toBe(1);
    const a = robust([
      'attack',
      '--model',
      foreign,
      '--data',
      'sample',
      '--fgsm',
      '--limit',
      '8',
      '--labels',
      'predicted',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ labels: 'predicted', clean_acc: 1 });
  });

  it('bad model options are one line and exit 2; an empty data set too; the options may come from --config', () => {
    // the parsers' own cases are library tests (test/models/preprocess.test.ts); here: that the CLI turns them into one line
    const cases: [string[], RegExp][] = [
      [['--mean', '0.5,0.5'], /--mean has 2 values but the model takes 1 channel/],
      [['--std', '1e-40'], /--std values must be positive \(at least/],
    ];
    for (const [extra, message] of cases) {
      const r = robust([
        'attack',
        '--model',
        foreign,
        '--data',
        'sample',
        '--fgsm',
        '--limit',
        '4',
        '--backend',
        'wasm',
        ...extra,
      ]);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('note:')),
      ).toHaveLength(1);
    }
    const dir = tmpDir('cli-foreign-config');
    const config = path.join(dir, 'grid.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        models: [foreign],
        data: 'sample',
        attacks: ['fgsm'],
        eps: ['0.1'],
        limit: 8,
        inputRange: [0, 255],
        labels: 'predicted',
      }),
    );
    const r = robust([
      'eval',
      '--config',
      config,
      '--out',
      path.join(dir, 'out'),
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'results.json'), 'utf8'));
    expect(json.models[0]).toMatchObject({ labels: 'predicted', clean_acc: 1 });
    expect(json.models[0].input).toMatch(/^inputs in \[0,255\]/);
  });
});
