/** A full disk at any write of eval or attack --save: one line naming the file, the previous complete outputs intact. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../backend/index.js';
import { runGrid, type EvalConfig, type EvalModel } from '../../eval/grid.js';
import { writeReports } from '../../eval/report.js';
import { readCell } from '../../eval/cells.js';
import { attackOutputs } from '../../eval/output-files.js';
import { saveAdversarials } from '../../eval/save-adversarials.js';
import { layersClassifier } from '../../models/classifier.js';
import type { ImageSet } from '../../data/dataset.js';
import { RobustError } from '../../util/errors.js';
import { tinyConvNet } from '../attacks/models.js';
import { tmpDir } from '../helpers.js';

/** Makes the `k`-th call of fs.writeFileSync from now on fail as on a full disk; returns the number of calls so far. */
function diskFullAt(k: number): () => number {
  const real = fs.writeFileSync;
  let calls = 0;
  vi.spyOn(fs, 'writeFileSync').mockImplementation(
    (...args: Parameters<typeof fs.writeFileSync>) => {
      if (++calls === k)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      return real(...args);
    },
  );
  return () => calls;
}

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

function expectOneLineEnospc(e: unknown, dir: string): void {
  expect(e, String(e)).toBeInstanceOf(RobustError);
  const m = (e as Error).message;
  expect(m).toMatch(/ENOSPC: no space left on the device/);
  expect(m.startsWith(dir)).toBe(true); // names the file
  expect(m.split('\n')).toHaveLength(1);
}

afterEach(() => {
  vi.restoreAllMocks();
});

const set: ImageSet = (() => {
  const n = 12;
  const images = new Uint8Array(n * 8 * 8 * 3);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7919) % 251;
  return {
    images,
    labels: Uint8Array.from({ length: n }, (_, i) => i % 5),
    count: n,
    height: 8,
    width: 8,
    channels: 3,
  };
})();
let models: EvalModel[];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const a = tinyConvNet(2);
  models = [
    {
      path: 'a',
      name: 'a',
      model: a,
      classifier: layersClassifier(a),
      defense: 'none',
      test: set,
      fingerprint: 'a1',
    },
  ];
});

describe('disk full during eval', () => {
  const before: EvalConfig = {
    models: ['a'],
    attacks: ['fgsm', 'pgd:2'],
    eps: [0],
    norm: 'linf',
    limit: 12,
    batchSize: 12,
    seed: 0,
  };
  const after: EvalConfig = { ...before, eps: [0, 0.02] };

  it('at every write (new cells, then the four reports): one line naming the file, the previous reports unchanged, no temp files, sound cells', async () => {
    const done = tmpDir('enospc-eval');
    await writeReports(
      done,
      (await runGrid(before, models, { out: done, backend: 'wasm', quiet: true })).result,
    );
    const reports = () =>
      Object.fromEntries(Object.entries(snapshot(done)).filter(([f]) => !f.startsWith('cells')));
    const old = reports();
    expect(Object.keys(old).sort()).toEqual([
      'report.html',
      'results.csv',
      'results.json',
      'results.md',
    ]);
    // 2 new cells + 4 report files = 6 writes; fail each one in turn
    for (let k = 1; k <= 6; k++) {
      const out = tmpDir('enospc-eval-k');
      fs.cpSync(done, out, { recursive: true });
      const oldHere = snapshot(out);
      const calls = diskFullAt(k);
      let error: unknown;
      try {
        const { result } = await runGrid(after, models, { out, backend: 'wasm', quiet: true });
        await writeReports(out, result);
      } catch (e) {
        error = e;
      }
      vi.restoreAllMocks();
      expect(calls(), `k=${k}`).toBeGreaterThanOrEqual(k);
      expectOneLineEnospc(error, out);
      const now = snapshot(out);
      for (const f of ['report.html', 'results.csv', 'results.json', 'results.md'])
        expect(now[f], `k=${k}: ${f}`).toBe(oldHere[f]);
      expect(
        Object.keys(now).filter((f) => /\.tmp-/.test(f)),
        `k=${k}`,
      ).toEqual([]);
      for (const f of fs.readdirSync(path.join(out, 'cells')))
        expect(readCell(path.join(out, 'cells', f)).cell, `k=${k}: ${f}`).toBeDefined();
      // and the next run finishes, reusing the cells written before the failure
      let reused = 0;
      const { result, complete } = await runGrid(after, models, {
        out,
        backend: 'wasm',
        quiet: true,
        onCell: (_, r) => void (r && reused++),
      });
      expect(complete).toBe(true);
      expect(reused).toBe(2 + Math.min(k - 1, 2));
      await writeReports(out, result);
      expect(
        JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).cells,
      ).toHaveLength(4);
    }
  });
});

describe('disk full during attack --save', () => {
  it('at any of the three files (images, labels, grid): one line naming the file, the previous three unchanged, no temp files', () => {
    const gray: ImageSet = {
      images: new Uint8Array(4 * 6 * 6).map((_, i) => i % 256),
      labels: Uint8Array.from([0, 1, 2, 3]),
      count: 4,
      height: 6,
      width: 6,
      channels: 1,
    };
    const dir = tmpDir('enospc-attack');
    const outputs = attackOutputs(path.join(dir, 'adv.bin'), undefined, 1);
    expect(outputs.files).toHaveLength(3);
    saveAdversarials(
      outputs,
      gray,
      gray.images.map((v) => 255 - v),
      [0, 1],
    );
    const old = snapshot(dir);
    expect(Object.keys(old).sort()).toEqual(['adv.bin', 'adv.bin.labels', 'adv.png']);
    for (let k = 1; k <= 3; k++) {
      diskFullAt(k);
      let error: unknown;
      try {
        saveAdversarials(
          outputs,
          { ...gray, labels: Uint8Array.from([3, 2, 1, 0]) },
          gray.images.map((v) => (v + k) % 256),
          [2, 3],
        );
      } catch (e) {
        error = e;
      }
      vi.restoreAllMocks();
      expectOneLineEnospc(error, dir);
      expect(snapshot(dir), `k=${k}`).toEqual(old);
    }
  });
});
