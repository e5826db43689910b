/**
 * `robust eval --shard i/n` as n separate processes sharing one results folder, some SIGKILLed
 * mid-way and started again, then `robust merge`: the results of one process, bit for bit.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from '../helpers.js';
import { robust, tinyCheckpoint } from './fixtures.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');

/** Runs `robust args`; with `killWhen`, SIGKILLs it as soon as that holds. Resolves with how it ended. */
function run(
  args: string[],
  killWhen?: () => boolean,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const poll =
    killWhen &&
    setInterval(() => {
      let now = false;
      try {
        now = killWhen();
      } catch {
        /* its folder is not there yet */
      }
      if (now) child.kill('SIGKILL');
    }, 10);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      if (poll) clearInterval(poll);
      resolve({ code, signal, stderr });
    }),
  );
}

/** results.json without the date and the times. */
function numbers(out: string): unknown {
  const r = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  r.date = '';
  for (const c of r.cells) [c.stats.seconds, c.stats.img_per_s] = [0, 0];
  return r;
}
/** results.csv's rows without its seconds column (parsed: the compute column is quoted and holds commas). */
function csv(out: string): string[][] {
  const rows = parseCsv(fs.readFileSync(path.join(out, 'results.csv'), 'utf8')) as string[][];
  const seconds = rows[0].indexOf('seconds');
  expect(seconds).toBeGreaterThan(0);
  return rows.map((r) => r.filter((_, i) => i !== seconds));
}
/** The finished cells without their times and digest, by file name (gallery included). */
function cells(out: string): Record<string, unknown> {
  const dir = path.join(out, 'cells');
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => /^[0-9a-f]{32}\.json$/.test(f))
      .map((f) => {
        const {
          digest: _d,
          stats: { seconds: _s, img_per_s: _i, ...stats },
          ...cell
        } = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
        return [f, { ...cell, stats }];
      }),
  );
}

/** Whether worker i of n has written a file matching `what` into its folder (a part, or the partial of a part in progress). */
const wrote = (out: string, i: number, n: number, what: RegExp) =>
  fs.readdirSync(path.join(out, 'shards', `${i}-of-${n}`)).some((f) => what.test(f));
const PARTIAL = /\.partial\.json$/;
const PART_OR_PARTIAL = /\.(part|partial)\.json$/;

describe('robust eval --shard i/n in n processes, then robust merge', () => {
  let ckpt: string;
  let other: string;
  beforeAll(async () => {
    ckpt = await tinyCheckpoint('shard-cli');
    other = await tinyCheckpoint('shard-cli-other', 2);
  });
  const grid = (out: string, extra: string[] = [], model = ckpt) => [
    'eval',
    '--models',
    model,
    '--attacks',
    'fgsm,pgd:4',
    '--eps',
    '0.05,0.1',
    '--limit',
    '32',
    '--batch-size',
    '8',
    '--threads',
    '1',
    '--backend',
    'wasm',
    '--quiet',
    '--out',
    out,
    ...extra,
  ];
  const cascade = (out: string, extra: string[] = []) => [
    'eval',
    '--models',
    ckpt,
    '--attacks',
    'apgd-ce:2,apgd-t:2,fab-t:2,square:20',
    '--cascade',
    '--eps',
    '0.1',
    '--limit',
    '32',
    '--batch-size',
    '8',
    '--threads',
    '1',
    '--backend',
    'wasm',
    '--quiet',
    '--out',
    out,
    ...extra,
  ];

  /** The n workers at once, those in `killed` SIGKILLed once they have written something and started again; then the merge. */
  async function sharded(
    args: (out: string, extra?: string[]) => string[],
    n: number,
    killed: number[],
    when = PART_OR_PARTIAL,
  ): Promise<string> {
    const out = path.join(tmpDir(`shard-cli-${n}`), 'results');
    const ends = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        run(
          args(out, ['--shard', `${i}/${n}`]),
          killed.includes(i) ? () => wrote(out, i, n, when) : undefined,
        ),
      ),
    );
    for (const [i, e] of ends.entries()) {
      if (killed.includes(i))
        expect(e.signal, `worker ${i} of ${n} finished before it could be killed`).toBe('SIGKILL');
      else expect(e.code, e.stderr).toBe(0);
    }
    const again = await Promise.all(killed.map((i) => run(args(out, ['--shard', `${i}/${n}`]))));
    for (const e of again) expect(e.code, e.stderr).toBe(0);
    const merged = robust(['merge', out]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toMatch(/\| \*\*(worst case|cascade)\*\* \|/);
    return out;
  }

  it('n = 1, 2 (one worker killed mid-part and started again) and 7 (more workers than cells, and than batches per cell): the merge is the one-process run, every JSON number bit for bit', async () => {
    const one = path.join(tmpDir('shard-cli-one'), 'results');
    expect(robust(grid(one)).code).toBe(0);
    for (const [n, killed] of [
      [1, []],
      [2, [1]],
      [7, []],
    ] as const) {
      const out = await sharded(grid, n, [...killed], PARTIAL);
      expect(numbers(out), `n = ${n}`).toEqual(numbers(one));
      expect(csv(out), `n = ${n}`).toEqual(csv(one));
      expect(cells(out), `n = ${n}`).toEqual(cells(one));
    }
  });

  it("n = 3 on AutoAttack's cascade, one worker killed mid-way: each worker runs every step on its images, the merge is the one-process run", async () => {
    const one = path.join(tmpDir('shard-cli-one'), 'results');
    expect(robust(cascade(one)).code).toBe(0);
    const out = await sharded(cascade, 3, [1]);
    expect(numbers(out)).toEqual(numbers(one));
    expect(csv(out)).toEqual(csv(one));
    expect(cells(out)).toEqual(cells(one));
  });

  it('shards of another grid (other weights under the same path) or missing shards: merge refuses in one line, exit 2', async () => {
    const root = tmpDir('shard-cli-bad');
    const model = path.join(root, 'model');
    fs.cpSync(ckpt, model, { recursive: true });
    const out = path.join(root, 'results');
    const small = (extra: string[]) => grid(out, ['--limit', '16', ...extra], model);
    expect(robust(small(['--shard', '0/2'])).code).toBe(0);
    fs.cpSync(other, model, { recursive: true, force: true }); // retrained: same path, other weights
    expect(robust(small(['--shard', '1/2'])).code).toBe(0);
    const weights = robust(['merge', out]);
    expect(weights.code).toBe(2);
    expect(weights.stderr).toMatch(
      /^robust: shards 0\/2 .* ran different grids: model .*model: another model \(weights, preprocessing or logits; fingerprint [0-9a-f]{12}… vs [0-9a-f]{12}…\)\n$/,
    );

    fs.rmSync(path.join(out, 'shards', '1-of-2'), { recursive: true });
    const missing = robust(['merge', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^robust: cannot merge: 4 of 4 cells missing; parts missing from shard 1\/2 \(never started: no manifest\): model fgsm eps 0\.05, model pgd:4 eps 0\.05, model fgsm eps 0\.1 and 1 more\. Run the missing shards .*, or merge with --partial\n$/,
    );
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
  });
});
