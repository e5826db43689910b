/** `robust attack` through the real command line (child processes on the built package). */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { parseIdx } from '../../data/fashion-mnist.js';
import { loadData } from '../../data/index.js';
import { tmpDir } from '../helpers.js';
import { spawnSync } from 'node:child_process';
import { once, robust, robustBatch, tinyCheckpoint, type Run } from './fixtures.js';
import { ROOT } from '../helpers.js';
import { ATTACK_NAMES } from '../../attacks/index.js';

let ckpt: string;

beforeAll(async () => {
  ckpt = await tinyCheckpoint('cli-attack');
});

describe('robust attack', () => {
  it('--fgsm --json reports clean/robust accuracy, success, perturbation, speed and the full config', () => {
    const r = robust([
      'attack',
      '--fgsm',
      '--model',
      ckpt,
      '--limit',
      '40',
      '--eps',
      '8/255',
      '--json',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.n).toBe(40);
    expect(j.data).toBe('fashion-mnist-sample');
    expect(j.attack).toMatchObject({
      name: 'fgsm',
      norm: 'linf',
      steps: 1,
      seed: 0,
      mode: 'inference',
    });
    expect(j.attack.eps).toBeCloseTo(8 / 255, 10);
    expect(j.robust_acc).toBeLessThanOrEqual(j.clean_acc);
    expect(j.linf_max).toBeLessThanOrEqual(8 / 255 + 1e-6);
    for (const k of ['success_rate', 'l2_mean', 'seconds', 'img_per_s', 'backend'])
      expect(j).toHaveProperty(k);
  });

  it('--norm l1: L1-APGD with its schedule, perturbations within the L1 budget; AutoAttack takes its L1 version', () => {
    const r = robust([
      'attack',
      '--apgd-ce',
      '--norm',
      'l1',
      '--eps',
      '3',
      '--steps',
      '6',
      '--model',
      ckpt,
      '--limit',
      '12',
      '--json',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    expect(j.attack).toMatchObject({ name: 'apgd-ce', norm: 'l1', eps: 3, largeEps: true });
    expect(j.l1_max).toBeGreaterThan(0);
    expect(j.l1_max).toBeLessThanOrEqual(3 * (1 + 1e-5));
    const aa = robust([
      'attack',
      '--autoattack',
      '--norm',
      'l1',
      '--eps',
      '3',
      '--model',
      ckpt,
      '--limit',
      '4',
      '--json',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(aa.code, aa.stderr).toBe(0);
    expect(JSON.parse(aa.stdout).steps.map((s: { attack: string }) => s.attack)).toEqual([
      'apgd-ce:restarts=5',
      'apgd-t:targets=5',
      'fab-t',
      'square',
    ]);
    const plus = robust([
      'attack',
      '--autoattack',
      'plus',
      '--norm',
      'l1',
      '--model',
      ckpt,
      '--limit',
      '4',
      '--backend',
      'wasm',
    ]);
    expect(plus.code).not.toBe(0);
    expect(plus.stderr.trim()).toMatch(
      /^robust: preset autoattack:plus is defined for linf and l2 only/,
    );
  });

  it('--pgd --save writes 8-bit adversarials in the IDX layout within eps, and a PNG grid', async () => {
    const dir = tmpDir('cli-attack-save');
    const file = path.join(dir, 'adv.bin');
    const r = robust([
      'attack',
      '--pgd',
      '--steps',
      '3',
      '--model',
      ckpt,
      '--limit',
      '30',
      '--eps',
      '0.1',
      '--save',
      file,
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/clean accuracy +\d/);
    expect(r.stdout).toMatch(/robust accuracy +\d/);
    expect(r.stdout).toMatch(/saved .*adv\.bin/);
    const images = parseIdx(fs.readFileSync(file), 3, file);
    const labels = parseIdx(fs.readFileSync(`${file}.labels`), 1, file);
    expect(images.shape).toEqual([30, 28, 28]);
    expect(labels.shape).toEqual([30]);
    const data = await loadData('sample');
    let maxDiff = 0;
    for (let i = 0; i < 30 * 784; i++)
      maxDiff = Math.max(maxDiff, Math.abs(images.data[i] - data.test.images[i]));
    expect(maxDiff).toBeLessThanOrEqual(Math.floor(0.1 * 255));
    expect(maxDiff).toBeGreaterThan(0);
    expect(Array.from(labels.data)).toEqual(Array.from(data.test.labels.subarray(0, 30)));
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, 'adv.png')));
    expect(png.height).toBe(3 * (28 * 3 + 2) + 2);
    expect(fs.readdirSync(dir).sort()).toEqual(['adv.bin', 'adv.bin.labels', 'adv.png']);
  });

  it('every registered attack runs through the CLI', () => {
    const runs = robustBatch(
      ATTACK_NAMES.map((name) => ({
        args: [
          'attack',
          `--${name}`,
          '--model',
          ckpt,
          '--limit',
          '6',
          '--steps',
          '2',
          '--json',
          '--quiet',
          '--backend',
          'wasm',
          ...(name === 'eot-pgd' ? ['--eot-samples', '2'] : []),
        ],
      })),
    );
    for (const [i, name] of ATTACK_NAMES.entries()) {
      const r = runs[i];
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).attack.name).toBe(name);
    }
  });

  const bad: [string[], RegExp][] = [
    [['--eps', '-1'], /--eps must be a number/],
    [['--eps', '8/0'], /--eps must be a number/],
    [['--steps', '0'], /--steps must be a positive integer/],
    [['--attack', 'cw'], /unknown attack 'cw'/],
    [['--pgd', '--fgsm'], /choose one attack/],
    [['--norm', 'l3'], /--norm must be one of linf, l2, l1, got 'l3'/],
    [['--targeted', 'foo'], /--targeted must be random, least-likely or a class index/],
    [['--targeted', '12'], /target class 12 does not exist/],
    [['--loss', 'hinge'], /--loss must be ce or dlr/],
  ];
  // The refusals below run in one process (robustBatch): they are about the line and the exit code.
  const badRuns = once(() =>
    robustBatch([
      ...bad.map(([args]) => ({
        args: ['attack', '--model', ckpt, '--limit', '4', '--backend', 'wasm', '--quiet', ...args],
      })),
      { args: ['attack', '--model', '/nonexistent/ckpt', '--backend', 'wasm'] },
    ]),
  );
  for (const [i, [args, message]] of bad.entries()) {
    it(`'attack ${args.join(' ')}' fails with one clear line`, () => {
      const r = badRuns()[i];
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  }

  it('a missing checkpoint is one clear line', () => {
    const r = badRuns()[bad.length];
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no such file/);
  });

  describe('--save and --grid paths are checked before the attack runs', () => {
    // Without --quiet the banner comes just before the attack starts: a refusal must come before it.
    const argv = (args: string[]) => [
      'attack',
      '--pgd',
      '--steps',
      '2',
      '--model',
      ckpt,
      '--limit',
      '8',
      '--backend',
      'wasm',
      ...args,
    ];
    const run = (args: string[]) => robust(argv(args));
    const refused = (r: Run, message: RegExp) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    };
    const cases: [string, (dir: string) => string[], RegExp][] = [
      ['a folder', (dir) => ['--save', dir], /--save .* is a folder/],
      ['/', () => ['--save', '/'], /--save \/ is a folder/],
      ['a name ending in a slash', (dir) => ['--save', path.join(dir, 'new') + '/'], /is a folder/],
      [
        'a missing parent folder',
        (dir) => ['--save', path.join(dir, 'missing', 'adv.bin')],
        /folder .*missing does not exist/,
      ],
      [
        'a parent that is a file',
        (dir) => (
          fs.writeFileSync(path.join(dir, 'f'), ''),
          ['--save', path.join(dir, 'f', 'adv.bin')]
        ),
        /is not a folder/,
      ],
      ['a parent that cannot be written', () => ['--save', '/proc/self/adv.bin'], /not writable/],
      ['an empty name', () => ['--save', ''], /--save needs a file name/],
      [
        'the same path as --grid',
        (dir) => ['--save', path.join(dir, 'a.bin'), '--grid', path.join(dir, '.', 'a.bin')],
        /--grid .* is the same file as --save/,
      ],
      [
        '--grid on the labels file',
        (dir) => ['--save', path.join(dir, 'a.bin'), '--grid', path.join(dir, 'a.bin.labels')],
        /same file as --save \(its labels\)/,
      ],
      [
        'the model weights',
        () => ['--save', path.join(ckpt, 'weights.bin')],
        /would replace a file of the model/,
      ],
      [
        'the model.json, through a linked folder',
        (dir) => (
          fs.symlinkSync(ckpt, path.join(dir, 'link')),
          ['--grid', path.join(dir, 'link', 'model.json')]
        ),
        /would replace a file of the model/,
      ],
    ];
    // One process for all of them, each case in a folder of its own.
    const refusals = once(() =>
      robustBatch(cases.map(([, args]) => ({ args: argv(args(tmpDir('cli-attack-paths'))) }))),
    );
    for (const [i, [what, , message]] of cases.entries()) {
      it(`refuses ${what} in one line, before the attack`, () => {
        if (what.includes('cannot be written') && process.platform !== 'linux') return;
        refused(refusals()[i], message);
        expect(fs.readdirSync(ckpt).sort()).toEqual(['model.json', 'weights.bin']);
      });
    }

    it('--save x.png keeps the images and puts the default grid beside them (x.grid.png), not on top of them', () => {
      const dir = tmpDir('cli-attack-png');
      const r = run(['--save', path.join(dir, 'adv.png'), '--quiet']);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readdirSync(dir).sort()).toEqual(['adv.grid.png', 'adv.png', 'adv.png.labels']);
      expect(parseIdx(fs.readFileSync(path.join(dir, 'adv.png')), 3, 'adv.png').shape).toEqual([
        8, 28, 28,
      ]);
      expect(PNG.sync.read(fs.readFileSync(path.join(dir, 'adv.grid.png'))).width).toBeGreaterThan(
        0,
      );
    });

    it('refuses to write onto the file standard output is redirected to', () => {
      const dir = tmpDir('cli-attack-stdout');
      const file = path.join(dir, 'out.json');
      const fd = fs.openSync(file, 'w');
      const r = spawnSync(
        process.execPath,
        [
          path.join(ROOT, 'bin', 'robust.js'),
          'attack',
          '--model',
          ckpt,
          '--limit',
          '4',
          '--backend',
          'wasm',
          '--json',
          '--save',
          file,
        ],
        { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', timeout: 120_000 },
      );
      fs.closeSync(fd);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/is the file standard output is redirected to/);
    });
  });
});
