/** Runs killed with SIGKILL at a random moment resume and end exactly as uninterrupted runs. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from '../helpers.js';
import { robust, tinyCheckpoint } from '../cli/fixtures.js';
import { isPartialFile } from '../../eval/partial-cells.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');

/** The finished cells in a results folder (not the hidden temp files of a write, nor partial cells). */
const cellFiles = (out: string) =>
  fs.readdirSync(path.join(out, 'cells')).filter((f) => !f.startsWith('.') && !isPartialFile(f));
/** The partial cells in a results folder, with the examples each has done. */
const partialCells = (out: string) =>
  fs
    .readdirSync(path.join(out, 'cells'))
    .filter(isPartialFile)
    .map((f) => ({
      file: f,
      seen: JSON.parse(fs.readFileSync(path.join(out, 'cells', f), 'utf8')).state.seen as number,
    }));

/** Starts `robust args` and sends `signal` as soon as `ready()` holds; resolves with its exit code. */
async function killWhen(
  args: string[],
  ready: () => boolean,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<number | null> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      let ok = false;
      try {
        ok = ready();
      } catch {
        /* not written yet */
      }
      if (ok || child.exitCode !== null) {
        clearInterval(poll);
        child.kill(signal);
        resolve();
      }
    }, 20);
  });
  return exited;
}

describe('kill and resume', () => {
  let ckpt: string;
  beforeAll(async () => {
    ckpt = await tinyCheckpoint('kill-eval');
  });

  it('an eval grid killed after some cells resumes them and ends with the same results', async () => {
    const root = tmpDir('kill-eval');
    const args = (out: string) => [
      'eval',
      '--models',
      ckpt,
      '--attacks',
      'fgsm,pgd:3',
      '--eps',
      '0,0.05,0.1',
      '--limit',
      '24',
      '--batch-size',
      '8',
      '--threads',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--out',
      out,
    ];
    expect(robust(args(path.join(root, 'straight'))).code).toBe(0);
    const out = path.join(root, 'killed');
    // A kill between a cell's temp write and its rename may leave the hidden temp file, never a half-written cell.
    const written = () => cellFiles(out);
    await killWhen(args(out), () => written().length >= 2);
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
    for (const f of written())
      expect(
        () => JSON.parse(fs.readFileSync(path.join(out, 'cells', f), 'utf8')),
        f,
      ).not.toThrow(); // no half-written cell
    expect(robust(args(out)).code).toBe(0);
    const cells = (dir: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(root, dir, 'results.json'), 'utf8')).cells as {
          attack: string;
          eps: number;
          robust: string;
          stats: { robust_acc: number };
        }[]
      ).map((c) => [c.attack, c.eps, c.robust, c.stats.robust_acc]);
    expect(cells('killed')).toEqual(cells('straight'));
  });

  it('an eval grid killed mid-cell (SIGKILL) resumes at the batch it was in and ends with the same results', async () => {
    const root = tmpDir('kill-batch');
    const args = (out: string) => [
      'eval',
      '--models',
      ckpt,
      '--attacks',
      'pgd:5',
      '--eps',
      '0.05,0.1',
      '--limit',
      '64',
      '--batch-size',
      '8',
      '--threads',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--out',
      out,
    ];
    expect(robust(args(path.join(root, 'straight'))).code).toBe(0);
    const out = path.join(root, 'killed');
    // killed while at least three batches of the cell remain, so it cannot finish the cell first
    await killWhen(args(out), () => partialCells(out).some((p) => p.seen <= 64 - 3 * 8));
    const [partial, ...more] = partialCells(out);
    expect(more).toEqual([]);
    expect(partial.seen % 8).toBe(0);
    const resumed = robust(args(out).filter((a) => a !== '--quiet'));
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(
      new RegExp(`ckpt pgd:5 eps [0-9./]+ resumed at ${partial.seen}/64\\n`),
    );
    expect(partialCells(out)).toEqual([]);
    type Cell = { attack: string; eps: number; robust: string; stats: Record<string, number> };
    const cells = (dir: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(root, dir, 'results.json'), 'utf8')).cells as Cell[]
      ).map(({ stats: { seconds: _s, img_per_s: _i, ...stats }, ...c }) => [
        c.attack,
        c.eps,
        c.robust,
        stats,
      ]);
    expect(cells('killed')).toEqual(cells('straight'));
    const galleries = (dir: string) =>
      cellFiles(path.join(root, dir))
        .map(
          (f) =>
            JSON.parse(fs.readFileSync(path.join(root, dir, 'cells', f), 'utf8')).gallery ?? '',
        )
        .sort();
    expect(galleries('killed')).toEqual(galleries('straight'));
  });

  it('Ctrl-C (SIGINT) stops an eval grid after the current batch with exit 130; the same command finishes it', async () => {
    const out = path.join(tmpDir('sigint-eval'), 'results');
    const args = [
      'eval',
      '--models',
      ckpt,
      '--attacks',
      'pgd:5',
      '--eps',
      '0,0.05,0.1,0.2',
      '--limit',
      '40',
      '--batch-size',
      '8',
      '--threads',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--out',
      out,
    ];
    const code = await killWhen(args, () => cellFiles(out).length >= 1, 'SIGINT');
    expect(code).toBe(130);
    expect(fs.existsSync(path.join(out, 'results.json'))).toBe(false);
    const kept = cellFiles(out).length;
    expect(kept).toBeGreaterThanOrEqual(1);
    expect(kept).toBeLessThan(4);
    expect(robust(args).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).cells).toHaveLength(
      4,
    );
  });

  it('FGSM-RS adversarial training killed mid-epoch resumes and ends as an uninterrupted run', async () => {
    const root = tmpDir('kill-fgsm');
    const args = (out: string) => [
      'train',
      '--model',
      'resnet20',
      '--width',
      '4',
      '--data',
      'sample',
      '--limit',
      '256',
      '--eval-limit',
      '100',
      '--batch-size',
      '32',
      '--epochs',
      '2',
      '--defense',
      'fgsm-rs',
      '--eps',
      '0.1',
      '--robust-eval',
      '50',
      '--checkpoint-every',
      '2',
      '--threads',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--out',
      out,
    ];
    expect(robust(args(path.join(root, 'straight'))).code).toBe(0);
    const out = path.join(root, 'killed');
    await killWhen(args(out), () => {
      const st = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
      return st.epoch === 1 && st.batch > 0;
    });
    expect(robust([...args(out), '--resume']).code).toBe(0);
    const log = (dir: string) =>
      JSON.parse(fs.readFileSync(path.join(root, dir, 'log.json'), 'utf8')) as {
        test_acc: number;
        robust_acc: number;
        train_loss: number;
      }[];
    expect(log('killed').map((e) => [e.test_acc, e.robust_acc])).toEqual(
      log('straight').map((e) => [e.test_acc, e.robust_acc]),
    );
    expect(log('killed')[1].train_loss).toBeCloseTo(log('straight')[1].train_loss, 6);
  });
});
