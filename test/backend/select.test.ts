import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import tf from '#tfjs';
import { initBackend } from '../../backend/index.js';
import { RobustError } from '../../util/errors.js';
import { cpuCount } from '../../util/platform.js';
import { ROOT, tmpDir } from '../helpers.js';

describe('backend selection', () => {
  it('rejects unknown names with a RobustError', async () => {
    await expect(initBackend({ backend: 'tpu' })).rejects.toThrow(RobustError);
  });

  it('starts wasm multi-threaded in Node, one thread per core it may use', async () => {
    const info = await initBackend({ backend: 'wasm' });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const cores = cpuCount(); // affinity capped by a cgroup quota (util/cpu-quota.ts)
    expect(info.threads).toBe(Math.min(cores, 4)); // XNNPACK's pool is capped at 4 threads by tfjs
    // and the threads really compute: a conv gives the same result as on the cpu backend
    const x = tf.randomUniform([2, 9, 9, 3], 0, 1, 'float32', 7);
    const w = tf.randomUniform([3, 3, 3, 5], -1, 1, 'float32', 8);
    const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').dataSync();
    await tf.setBackend('cpu');
    const yRef = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same').dataSync();
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - yRef[i])).toBeLessThan(1e-4);
  });

  it('refuses to switch to another backend in the same process', async () => {
    await expect(initBackend({ backend: 'cpu' })).rejects.toThrow(/already running/);
  });

  it('lets a script that used wasm exit by itself (its pool threads do not keep Node alive)', () => {
    // A forward conv and a filter gradient: XNNPACK's pool and our kernel pool both start.
    const script = `
      import * as tf from ${JSON.stringify(pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('@tensorflow/tfjs')).href)};
      import { initBackend } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'backend', 'index.js')).href)};
      const info = await initBackend({ backend: 'wasm' });
      const x = tf.randomUniform([4, 16, 16, 8]);
      const w = tf.randomUniform([3, 3, 8, 8]);
      const g = tf.grad((f) => tf.conv2d(x, f, 1, 'same').sum())(w);
      console.log(info.threads, g.shape.join('x'));`;
    const file = path.join(tmpDir('exit'), 'uses-wasm.mjs'); // a file, as -e and --input-type would pass on to the workers
    fs.writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, 'still running after 60 s: killed').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${Math.min(cpuCount(), 4)} 3x3x8x8`);
  });
});
