import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// zoo-add only moves files and writes zoo/index.json, so a fake run and a scratch zoo
// ($ROBUST_ZOO_DIR) test it without training anything. `npm test` builds dist/ first.
const ZOO_ADD = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'dist',
  'scripts',
  'zoo-add.js',
);

let root: string;
let zoo: string;
let runDir: string;
const add = (...args: string[]) =>
  spawnSync(process.execPath, [ZOO_ADD, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ROBUST_ZOO_DIR: zoo },
  });
const index = () =>
  JSON.parse(fs.readFileSync(path.join(zoo, 'index.json'), 'utf8')).entries as Array<
    Record<string, unknown>
  >;
const entry = (name: string) => ({
  name,
  architecture: 'resnet20',
  data: 'cifar10',
  defense: 'none',
  command: 'old',
  epochs: 1,
  train_seconds: 1,
  backend: 'cpu',
  test_acc: 0.1,
  sha256: {},
});

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'zoo-add-'));
  zoo = path.join(root, 'zoo');
  fs.mkdirSync(zoo);
  fs.writeFileSync(
    path.join(zoo, 'index.json'),
    JSON.stringify({ entries: [entry('first'), entry('second'), entry('third')] }),
  );
  runDir = path.join(root, 'run');
  fs.mkdirSync(path.join(runDir, 'checkpoint'), { recursive: true });
  fs.writeFileSync(
    path.join(runDir, 'checkpoint', 'state.json'),
    JSON.stringify({ config: { model: 'resnet20', data: 'cifar10', backend: 'wasm' } }),
  );
  fs.writeFileSync(
    path.join(runDir, 'checkpoint', 'model.json'),
    JSON.stringify({ modelTopology: {}, userDefinedMetadata: { robust: {} } }),
  );
  fs.writeFileSync(path.join(runDir, 'checkpoint', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
  fs.writeFileSync(
    path.join(runDir, 'log.json'),
    JSON.stringify([
      { epoch: 1, test_acc: 0.5, seconds: 10.4 },
      { epoch: 2, test_acc: 0.75, seconds: 12.3 },
    ]),
  );
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('npm run zoo:add', () => {
  it('replaces an entry in its place, with the last epoch, summed time and the files checksums', () => {
    const r = add(runDir, 'second', '--command', 'robust train --epochs 2');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const entries = index();
    expect(entries.map((e) => e.name)).toEqual(['first', 'second', 'third']);
    const e = entries[1];
    expect(e).toMatchObject({
      command: 'robust train --epochs 2',
      epochs: 2,
      test_acc: 0.75,
      train_seconds: 23,
      backend: 'wasm (2 threads)',
    });
    const weights = fs.readFileSync(path.join(zoo, 'second', 'weights.bin'));
    expect(weights).toEqual(Buffer.from([1, 2, 3, 4]));
    expect((e.sha256 as Record<string, string>)['weights.bin']).toBe(
      crypto.createHash('sha256').update(weights).digest('hex'),
    );
  });

  it('appends a new entry at the end', () => {
    expect(add(runDir, 'fourth', '--command', 'x').status).toBe(0);
    expect(index().map((e) => e.name)).toEqual(['first', 'second', 'third', 'fourth']);
  });

  for (const [what, breakRun] of [
    ['a missing run folder', () => fs.rmSync(runDir, { recursive: true })],
    ['a run with no finished epoch', () => fs.writeFileSync(path.join(runDir, 'log.json'), '[]')],
    ['a damaged log', () => fs.writeFileSync(path.join(runDir, 'log.json'), '[{"epoch": 1,')],
    ['a run without weights', () => fs.rmSync(path.join(runDir, 'checkpoint', 'weights.bin'))],
  ] as const) {
    it(`${what}: one line, exit 2, the zoo untouched`, () => {
      breakRun();
      const before = fs.readFileSync(path.join(zoo, 'index.json'), 'utf8');
      const r = add(runDir, 'second', '--command', 'x');
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^zoo-add: /);
      expect(fs.readFileSync(path.join(zoo, 'index.json'), 'utf8')).toBe(before);
      expect(fs.existsSync(path.join(zoo, 'second'))).toBe(false);
    });
  }

  it('refuses a name that cannot be a folder and a zoo: address', () => {
    const r = add(runDir, '../escape', '--command', 'x');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^zoo-add: entry name/);
    expect(index()).toHaveLength(3);
  });
});
