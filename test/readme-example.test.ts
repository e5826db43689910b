/**
 * README's "Writing an attack" block is the library's advertised surface: it must type-check
 * against the published types and run, importing `robust` as users do (the package resolves to
 * itself by name, so the block runs from a folder inside it, against dist/).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const dir = path.join(ROOT, 'test', `.readme-example-${process.pid}`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function exampleBlock(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- readme-example -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README.md has no block marked <!-- readme-example -->');
  return m[1];
}

it('the custom-attack example in README type-checks and runs', () => {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'example.ts');
  fs.writeFileSync(file, exampleBlock());
  const tsc = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--noEmit',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
      file,
    ],
    {
      encoding: 'utf8',
      cwd: ROOT,
    },
  );
  expect(tsc.stdout + tsc.stderr).toBe('');
  const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
    encoding: 'utf8',
    cwd: ROOT,
    timeout: 120_000,
  });
  expect(run.stderr).not.toMatch(/Error/);
  expect(run.status).toBe(0);
  const m = /^clean ([\d.]+), robust ([\d.]+) under margin-PGD at eps 0\.1$/m.exec(run.stdout);
  expect(m).not.toBeNull();
  // the zoo model is ~91% accurate on the sample; an undefended model falls far at eps 0.1
  expect(Number(m![1])).toBeGreaterThan(0.8);
  expect(Number(m![2])).toBeLessThan(Number(m![1]) / 2);
}, 180_000);
