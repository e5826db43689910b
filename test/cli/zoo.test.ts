/** `zoo:NAME`: trained checkpoints shipped in the package, checked by SHA-256, listed by `robust models`. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../models/pretrained.js';
import { tmpDir } from '../helpers.js';
import { robust, tinyCheckpoint } from './fixtures.js';

describe('a zoo folder with one entry', () => {
  let zoo: string;
  beforeAll(async () => {
    const ckpt = await tinyCheckpoint('zoo-entry');
    zoo = path.join(tmpDir('zoo'), 'zoo');
    fs.mkdirSync(path.join(zoo, 'tiny'), { recursive: true });
    for (const f of ['model.json', 'weights.bin'])
      fs.copyFileSync(path.join(ckpt, f), path.join(zoo, 'tiny', f));
    const entry = {
      name: 'tiny',
      architecture: 'resnet20',
      width: 4,
      data: 'fashion-mnist-sample',
      defense: 'none',
      command: 'robust train …',
      epochs: 1,
      train_seconds: 1,
      backend: 'wasm (2 threads)',
      test_acc: 0.1,
      sha256: {
        'model.json': sha256(path.join(zoo, 'tiny', 'model.json')),
        'weights.bin': sha256(path.join(zoo, 'tiny', 'weights.bin')),
      },
    };
    fs.writeFileSync(path.join(zoo, 'index.json'), JSON.stringify({ entries: [entry] }));
  });

  it('attack and eval take --model zoo:NAME', () => {
    const a = robust(
      [
        'attack',
        '--fgsm',
        '--model',
        'zoo:tiny',
        '--eps',
        '0.1',
        '--limit',
        '20',
        '--json',
        '--quiet',
      ],
      { ROBUST_ZOO_DIR: zoo },
    );
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({
      model: 'zoo:tiny',
      n: 20,
      data: 'fashion-mnist-sample',
    });
    const out = path.join(tmpDir('zoo-eval'), 'results');
    const e = robust(
      [
        'eval',
        '--model',
        'zoo:tiny',
        '--attacks',
        'fgsm',
        '--eps',
        '0,0.1',
        '--limit',
        '20',
        '--out',
        out,
        '--quiet',
      ],
      { ROBUST_ZOO_DIR: zoo },
    );
    expect(e.code).toBe(0);
    expect(e.stdout).toContain('zoo:tiny');
  });

  it('robust models marks the architecture as trained and lists zoo:NAME', () => {
    const r = robust(['models', '--json'], { ROBUST_ZOO_DIR: zoo });
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as {
      name: string;
      width: number;
      trained: { name: string }[];
    }[];
    // the width-4 checkpoint is on a row of its own width, not on resnet20's (width 16)
    expect(rows.filter((m) => m.name === 'resnet20').map((m) => m.width)).toEqual([16, 4]);
    expect(
      rows.find((m) => m.name === 'resnet20' && m.width === 4)!.trained.map((t) => t.name),
    ).toEqual(['zoo:tiny']);
    expect(rows.find((m) => m.name === 'resnet20' && m.width === 16)!.trained).toEqual([]);
    expect(rows.find((m) => m.name === 'resnet56')!.trained).toEqual([]);
  });

  it('an unknown name and a damaged file are one-line errors', () => {
    const unknown = robust(['attack', '--fgsm', '--model', 'zoo:nope', '--limit', '5'], {
      ROBUST_ZOO_DIR: zoo,
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe("robust: unknown zoo model 'nope' (trained entries: tiny)");
    const damaged = path.join(tmpDir('zoo-damaged'), 'zoo');
    fs.cpSync(zoo, damaged, { recursive: true });
    const w = path.join(damaged, 'tiny', 'weights.bin');
    const bytes = fs.readFileSync(w);
    bytes[100] ^= 0xff;
    fs.writeFileSync(w, bytes);
    const r = robust(['attack', '--fgsm', '--model', 'zoo:tiny', '--limit', '5'], {
      ROBUST_ZOO_DIR: damaged,
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('SHA-256 does not match');
    // a zoo folder named by the user but holding no index: an error, not an empty list
    const none = path.join(tmpDir('zoo-none'), 'nowhere');
    const m = robust(['models'], { ROBUST_ZOO_DIR: none });
    expect(m.code).toBe(2);
    expect(m.stderr.trim()).toBe(
      `robust: ROBUST_ZOO_DIR=${none}: no zoo there (${path.join(none, 'index.json')} is missing)`,
    );
  });
});
