/**
 * README's "Writing an attack" and "Training from code" blocks are the library's advertised
 * surface: they must type-check against the published types and run, importing `robust` as users
 * do (the package resolves to itself by name, so each block runs from a folder inside it, against
 * dist/).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ROOT } from './helpers.js';

const dir = path.join(ROOT, 'test', `.readme-example-${process.pid}`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The ts block after `<!-- readme-example NAME -->` (the custom attack's marker has no name). */
function exampleBlock(name = ''): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const marker = `<!-- readme-example${name ? ` ${name}` : ''} -->`;
  const at = readme.indexOf(`${marker}\n`);
  const m = at < 0 ? null : /^\s*```ts\n([\s\S]*?)```/.exec(readme.slice(at + marker.length));
  if (!m) throw new Error(`README.md has no block marked ${marker}`);
  return m[1];
}

/** Type-checks the block against the published types, then runs it (in its own folder: files it writes stay there). */
function runExample(name: string, block: string) {
  const cwd = path.join(dir, name);
  fs.mkdirSync(cwd, { recursive: true });
  const file = path.join(cwd, 'example.ts');
  fs.writeFileSync(file, block);
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
    cwd,
    timeout: 120_000,
  });
  expect(run.stderr).not.toMatch(/Error/);
  expect(run.status).toBe(0);
  return { run, cwd };
}

it('the custom-attack example in README type-checks and runs', () => {
  const { run } = runExample('attack', exampleBlock());
  const m = /^clean ([\d.]+), robust ([\d.]+) under margin-PGD at eps 0\.1$/m.exec(run.stdout);
  expect(m).not.toBeNull();
  // the zoo model is ~91% accurate on the sample; an undefended model falls far at eps 0.1
  expect(Number(m![1])).toBeGreaterThan(0.8);
  expect(Number(m![2])).toBeLessThan(Number(m![1]) / 2);
}, 180_000);

it('the training example in README type-checks, trains, and resumes its run', () => {
  const { run, cwd } = runExample('train', exampleBlock('train'));
  const m = /^onecycle schedule: test accuracy ([\d.]+), robust ([\d.]+)$/m.exec(run.stdout);
  expect(m, run.stdout).not.toBeNull();
  const out = path.join(cwd, 'runs', 'fgsm-rs-sample');
  const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
  expect([state.epoch, state.config.epochs, state.log.length]).toEqual([2, 2, 2]);
  expect(state.config.options).toMatchObject({ defense: 'fgsm-rs', eps: 0.1, epochs: 2 }); // the resume's epochs over the run's options
  expect(state.changes[0].changes).toEqual(['epochs 1 → 2 (extended)']);
  expect(state.log[1].robust_acc).toBeTypeOf('number');
}, 300_000);
