/** Importing robust changes nothing in tfjs; initBackend switches on its layer classes (documented in README, Backends). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const dir = path.join(ROOT, 'test', `.library-import-${process.pid}`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it("import 'robust' leaves tfjs's Conv2D and BatchNormalization as they are until initBackend", () => {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'check.mjs');
  fs.writeFileSync(
    file,
    `import * as tf from '@tensorflow/tfjs';
const cls = () => ['Conv2D', 'BatchNormalization'].map((n) => tf.serialization.SerializationMap.getMap().classNameMap[n][0].name);
const before = cls();
const robust = await import('robust');
await import('robust/attacks');
await import('robust/eval');
const after = cls();
await robust.initBackend({ backend: 'cpu' });
console.log(JSON.stringify({ before, after, init: cls() }));`,
  );
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const { before, after, init } = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(after).toEqual(before);
  expect(init).toEqual(['LazyConv2D', 'FusedBatchNormalization']);
});
