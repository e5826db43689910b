/**
 * What `robust` does when standard output fails (a full disk: ENOSPC; the reader gone: EPIPE) and
 * how it words commander's own errors: one `robust: ` line, no stack trace, the exit code saying so.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from '../helpers.js';
import { robustBatch } from './fixtures.js';
import { escapeControls } from '../../util/format.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');
// /dev/full exists on Linux (here and on CI): a write to it fails with ENOSPC
const FULL = '/dev/full';

interface Ended {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `robust args` with standard output to `to`: the file /dev/full, or a pipe whose reader leaves at once. */
function robustTo(to: 'full' | 'gone', args: string[]): Promise<Ended> {
  const out = to === 'full' ? fs.openSync(FULL, 'w') : 'pipe';
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', out, 'pipe'] });
  if (typeof out === 'number') fs.closeSync(out);
  child.stdout?.destroy(); // the reader leaves before anything is written: each write gets EPIPE
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stdout: '', stderr })),
  );
}

const noTrace = (r: Ended) => expect(r.stderr).not.toMatch(/\bat .*\.js:\d+|Error:|node:internal/);

describe('standard output that cannot be written', () => {
  it('/dev/full is here', () => {
    expect(fs.statSync(FULL).isCharacterDevice()).toBe(true);
  });

  // The check is in main, after every command: one run per kind of output (console.log, commander's
  // help, process.stdout.write of an export, a command's result after its work) keeps the file short.
  // a finished grid: the shipped results.json (its cells are left behind: the export reads past them)
  const results = tmpDir('stdout-export');
  fs.copyFileSync(
    path.join(ROOT, 'zoo', 'results', 'fashion-mnist', 'results.json'),
    path.join(results, 'results.json'),
  );
  const zoo = ['zoo:fmnist-resnet20w8', '--data', 'sample', '--limit', '8'];
  const runs: [string, 'full' | 'gone', string[]][] = [
    ['models --json', 'full', ['models', '--json']],
    ['--help', 'full', ['--help']],
    ['data (prints the set)', 'full', ['data', 'sample']],
    ['export --out -', 'full', ['export', 'md', results, '--out', '-']],
    ['models', 'gone', ['models']],
    [
      'attack --json',
      'gone',
      ['attack', '--fgsm', '--eps', '0.1', '--model', ...zoo, '--json', '--quiet'],
    ],
  ];
  let ended: Ended[];
  beforeAll(async () => {
    // two at a time, for the two cores
    ended = [];
    for (let i = 0; i < runs.length; i += 2)
      ended.push(...(await Promise.all(runs.slice(i, i + 2).map(([, to, a]) => robustTo(to, a)))));
  });

  for (const [i, [what, to]] of runs.entries()) {
    if (to === 'full')
      it(`${what} > /dev/full: one line, exit 1`, () => {
        expect(ended[i].stderr).toBe(
          'robust: cannot write to standard output: ENOSPC: no space left on the device\n',
        );
        expect(ended[i].code).toBe(1);
      });
    else
      it(`${what} | a reader that left: quiet, exit 141 as for SIGPIPE`, () => {
        noTrace(ended[i]);
        expect(ended[i].stderr).toBe('');
        expect(ended[i].code).toBe(141);
      });
  }
});

describe("commander's own errors, and user input in error lines", () => {
  const cases: [string[], string][] = [
    [['bogus'], "robust: unknown command 'bogus' (see robust --help)"],
    [['models', '--bogus'], "robust: unknown option '--bogus' (see robust models --help)"],
    [['data'], "robust: missing required argument 'name' (see robust data --help)"],
    [
      ['train', '--epochs'],
      "robust: option '--epochs <n>' argument missing (see robust train --help)",
    ],
    [
      ['attack', '--pgd', '--model', 'm', '--mdoel', 'x'],
      "robust: unknown option '--mdoel' (did you mean --model? see robust attack --help)",
    ],
    [['modles'], "robust: unknown command 'modles' (did you mean models? see robust --help)"],
    // control characters the user typed (ESC [2J clears a terminal) are shown escaped, not acted on
    [['x\u001b[2J'], "robust: unknown command 'x\\u001b[2J' (see robust --help)"],
    [
      ['eval', '--models', '/nowhere/\u001b[31mred', '--attacks', 'fgsm'],
      'robust: /nowhere/\\u001b[31mred/model.json: no such file (expected a model folder with model.json)',
    ],
  ];
  const runs = robustBatch(cases.map(([args]) => ({ args })));
  for (const [i, [args, line]] of cases.entries()) {
    it(`'${escapeControls(args.join(' '))}' is one robust: line, exit 2`, () => {
      expect(runs[i].stderr).toBe(`${line}\n`);
      expect(runs[i].code).toBe(2);
      expect(runs[i].stdout).toBe('');
    });
  }
});
