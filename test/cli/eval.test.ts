/** `robust eval` and `robust export` through the command line. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers.js';
import { once, robust, robustBatch, tinyCheckpoint } from './fixtures.js';

let a: string;
let b: string;

beforeAll(async () => {
  a = await tinyCheckpoint('cli-eval-a', 1);
  b = await tinyCheckpoint('cli-eval-b', 2);
});

describe('robust eval', () => {
  it('runs the grid, prints the table, writes csv/json/md/html; a rerun reuses every cell; export re-creates the csv', () => {
    const out = path.join(tmpDir('cli-eval'), 'results');
    const args = [
      'eval',
      '--models',
      `${a},${b}`,
      '--attacks',
      'fgsm,pgd:3',
      '--eps',
      '0,8/255',
      '--limit',
      '20',
      '--out',
      out,
      '--backend',
      'wasm',
    ];
    const r = robust(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| model \| defense \| attack \| clean \| eps 0 \| eps 8\/255 \|/);
    expect(r.stdout).toMatch(/worst case/);
    expect(fs.readdirSync(out).sort()).toEqual([
      'cells',
      'report.html',
      'results.csv',
      'results.json',
      'results.md',
    ]);
    const again = robust(args);
    expect(again.code).toBe(0);
    expect((again.stderr.match(/\(reused\)/g) ?? []).length).toBe(8);
    const csv = fs.readFileSync(path.join(out, 'results.csv'), 'utf8');
    const exported = path.join(out, 'again.csv');
    expect(robust(['export', 'csv', out, '--out', exported]).code).toBe(0);
    expect(fs.readFileSync(exported, 'utf8')).toBe(csv);
    const md = robust(['export', 'md', out, '--out', '-']);
    expect(md.stdout).toMatch(/# Robustness evaluation/);
  });

  it('a damaged cell file is recomputed with one warning line; a damaged results.json makes export fail in one line', () => {
    const out = path.join(tmpDir('cli-eval-damaged'), 'results');
    const args = [
      'eval',
      '--models',
      a,
      '--attacks',
      'fgsm',
      '--eps',
      '0,8/255',
      '--limit',
      '10',
      '--out',
      out,
      '--backend',
      'wasm',
      '--quiet',
    ];
    expect(robust(args).code).toBe(0);
    const cells = fs.readdirSync(path.join(out, 'cells'));
    fs.writeFileSync(path.join(out, 'cells', cells[0]), '{}');
    fs.writeFileSync(path.join(out, 'cells', cells[1]), '');
    const again = robust(args);
    expect(again.code).toBe(0);
    expect(again.stderr.trim().split('\n')).toHaveLength(2);
    expect(again.stderr).toMatch(
      /warning: .*damaged cell \(it has no digest: written by a robust older than digests, or not by robust\); computing it again/,
    );
    for (const [text, message] of [
      ['', /results\.json: not valid JSON/],
      ['{"cells": {}}', /results\.json: not a usable robust eval result/],
      ['{\n"config": 1\n', /not valid JSON/],
    ] as const) {
      fs.writeFileSync(path.join(out, 'results.json'), text);
      const r = robust(['export', 'md', out, '--out', '-']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('reads the grid from --config', () => {
    const dir = tmpDir('cli-eval-config');
    const config = path.join(dir, 'eval.json');
    fs.writeFileSync(
      config,
      JSON.stringify({ models: [a], attacks: ['fgsm'], eps: ['0', '4/255'], limit: 10 }),
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
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'results.json'), 'utf8'));
    expect(j.cells).toHaveLength(2);
    expect(j.config.limit).toBe(10);
    expect(j.config.eps[1]).toBeCloseTo(4 / 255, 10);
  });

  const UNKNOWN_KEY_CONFIG = path.join(tmpDir('cli-eval-config'), 'grid.json');
  fs.writeFileSync(UNKNOWN_KEY_CONFIG, JSON.stringify({ models: 'X', bakend: 'wasm' }));
  const BAD_VALUE_CONFIG = path.join(tmpDir('cli-eval-config'), 'grid-values.json');
  fs.writeFileSync(BAD_VALUE_CONFIG, JSON.stringify({ models: 'X', eps: 'abc' }));
  const PRESET_STEPS_CONFIG = path.join(tmpDir('cli-eval-config'), 'preset.json');
  fs.writeFileSync(
    PRESET_STEPS_CONFIG,
    JSON.stringify({ models: 'X', preset: 'autoattack', steps: 5 }),
  );
  const bad: [string[], RegExp][] = [
    [['eval'], /give the models to evaluate/],
    [['eval', '--models', 'X', '--attacks', 'fgsm,cw'], /unknown attack 'cw'/],
    [
      ['eval', '--models', 'X', '--attacks', 'pgd:0'],
      /steps must be an integer from 1 to 100000, got 0/,
    ],
    [['eval', '--models', 'X', '--eps', '1/0'], /--eps must be a number/],
    [['eval', '--models', '/nonexistent/m'], /no such file/],
    [['eval', '--config', '/nonexistent/eval.json'], /no such file/],
    // the known keys named are all the file may hold, how to feed the model included
    [
      ['eval', '--config', UNKNOWN_KEY_CONFIG],
      /: unknown key 'bakend' \(known: models, attacks, .*, data, inputRange, mean, std, output, labels\)$/m,
    ],
    // a bad value from the file is named as the file spells it; one from a flag as the flag
    [['eval', '--config', BAD_VALUE_CONFIG], /robust: .*grid-values\.json: eps must be a number/],
    [['eval', '--config', BAD_VALUE_CONFIG, '--eps', '1/0'], /robust: --eps must be a number/],
    [
      ['eval', '--config', PRESET_STEPS_CONFIG],
      /leave out steps in .*preset\.json \(or give --attacks with --cascade\)$/m,
    ],
    [['export', 'pdf', '/tmp'], /unknown export format 'pdf'/],
    [['export', 'csv', '/nonexistent/results'], /no such file/],
  ];
  // One process runs them all (robustBatch): they are about the line and the exit code.
  const badRuns = once(() =>
    robustBatch(
      bad.map(([args]) => ({
        args: [
          ...args,
          ...(args[0] === 'eval'
            ? ['--out', path.join(tmpDir('cli-eval-bad'), 'o'), '--backend', 'wasm']
            : []),
        ],
      })),
    ),
  );
  for (const [i, [args, message]] of bad.entries()) {
    it(`'${args.join(' ')}' fails with one clear line`, () => {
      const r = badRuns()[i];
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  }
});
