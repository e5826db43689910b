import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The benchmark itself takes minutes (npm run bench); here only its argument checks, which must
// stop before any timing starts. `npm test` builds dist/ first.
const BENCH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'dist',
  'scripts',
  'bench.js',
);
const run = (...args: string[]) =>
  spawnSync(process.execPath, [BENCH, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('npm run bench: bad options', () => {
  for (const args of [
    ['--models', 'resnet7'],
    ['--models', 'resnet20', '--batches', '64,0'],
    ['--cases', 'resnet20-128'],
    ['--rounds', '0'],
    ['--models', 'resnet20'],
    ['--seconds', 'soon'],
    ['--backends', 'wasm,gpu'],
    ['--batchs', '64'],
  ]) {
    it(`'${args.join(' ')}' fails with a clear message and runs nothing`, () => {
      const r = run(...args, '--out', '/nonexistent/bench.json');
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^(bench: |error: unknown option)/);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }

  it('--help lists the options and runs nothing', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--cases <list>');
    expect(r.stdout).toContain('--rounds <n>');
    expect(r.stdout).not.toContain('img/s  ');
  });
});

const BENCH_GRAPHS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'dist',
  'scripts',
  'bench-graphs.js',
);

describe('npm run bench:graphs: bad options', () => {
  for (const args of [
    ['--backend', 'gpu'],
    ['--batch', '0'],
    ['--runs', 'many'],
    ['--size', '0'],
  ]) {
    it(`'${args.join(' ')}' fails with a clear message and runs nothing`, () => {
      const r = spawnSync(process.execPath, [BENCH_GRAPHS, ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^bench:graphs: --/);
    });
  }
});
