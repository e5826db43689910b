import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from '../helpers.js';
import { once, robustBatch } from './fixtures.js';

const BIN = path.join(ROOT, 'bin', 'robust.js');
function robust(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('robust CLI', () => {
  it('models --json lists the 11 models with exact parameter counts, and a row per width a checkpoint was trained at', () => {
    const r = robust(['models', '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as {
      name: string;
      width: number;
      params: number;
      mflops: number;
      input: number[];
      trained: { name: string }[];
    }[];
    expect(new Set(rows.map((x) => x.name)).size).toBe(11);
    const resnet20 = rows.find((x) => x.name === 'resnet20' && x.width === 16);
    expect(rows.find((x) => x.name === 'resnet18')?.params).toBe(11173962);
    expect(resnet20?.params).toBe(272474);
    expect(resnet20?.mflops).toBeCloseTo(81.6, 0);
    // each row counts only the checkpoints of its width: the width-8 Fashion-MNIST ones have their own
    expect(resnet20?.trained.map((t) => t.name).sort()).toEqual([
      'zoo:resnet20',
      'zoo:resnet20-fgsm-rs',
      'zoo:resnet20-pgd',
    ]);
    const w8 = rows.filter((x) => x.width === 8);
    expect(w8.map((x) => x.name)).toEqual(['resnet20']);
    expect(w8[0].trained.map((t) => t.name).sort()).toEqual([
      'zoo:fmnist-resnet20w8',
      'zoo:fmnist-resnet20w8-fgsm-rs',
    ]);
    // the row is their model on their 28×28×1 images: the parameters in their weights files
    expect(w8[0].input).toEqual([28, 28, 1]);
    expect(w8[0].params).toBe(68642);
    expect(w8[0].mflops).toBeCloseTo(15.6, 1);
    expect(rows.filter((x) => x.width !== 8)).toHaveLength(11);
  });

  it('models prints the trained counts per row, the width-8 checkpoints on their own row', () => {
    const r = robust(['models']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^resnet20 +272,474 +81\.6 +3 ✓ /m);
    expect(r.stdout).toMatch(
      /^resnet20 w8 28×28 +68,642 +15\.6 +2 ✓ +CIFAR ResNet-20 \(He et al\. 2016\) at width 8 \(channels of the first stage\), on 28×28×1 images$/m,
    );
  });

  const bad: [string[], RegExp][] = [
    [['train', '--epochs', '0'], /--epochs must be a positive integer/],
    [['train', '--batch-size', '0'], /--batch-size must be a positive integer/],
    [['train', '--lr', '-1'], /--lr must be a number/],
    [['train', '--model', 'resnet7'], /unknown model 'resnet7'/],
    [['train', '--backend', 'tpu', '--data', 'sample'], /unknown backend 'tpu'/],
    [['train', '--schedule', 'zigzag'], /unknown --schedule 'zigzag'/],
    [['train', '--data', 'imagenet'], /unknown data set 'imagenet'/],
    [['data', 'cifar10', '--from', '/nonexistent/c.tar.gz'], /no such file/],
    [['train', '--defense', 'magic'], /unknown defense 'magic'/],
    [['train', '--defense', 'pgd,trades'], /choose one adversarial training method/],
    [['train', '--defense', 'clip'], /--defense clip needs --clip-norm and\/or --clip-value\n$/],
    [['train', '--defense', 'pgd', '--eps', '-1'], /--eps must be a number/],
    [['train', '--adv-ratio', '2'], /--adv-ratio must be ≤ 1/],
  ];
  // One process runs them all (robustBatch), each with a data folder of its own.
  const badRuns = once(() =>
    robustBatch(
      bad.map(([args]) => {
        const dataDir = tmpDir('cli-data');
        return {
          args: [
            ...args,
            ...(args[0] === 'data'
              ? ['--data-dir', dataDir]
              : ['--out', path.join(dataDir, 'run')]),
          ],
          env: { ROBUST_DATA_DIR: dataDir },
        };
      }),
    ),
  );
  for (const [i, [args, message]] of bad.entries()) {
    it(`'${args.join(' ')}' fails with one clear line`, () => {
      const r = badRuns()[i];
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    });
  }

  it('train runs on the bundled sample, writes a checkpoint and a log, and resumes', () => {
    const out = path.join(tmpDir('cli-train'), 'run');
    const args = (epochs: number) => [
      'train',
      '--model',
      'resnet20',
      '--width',
      '4',
      '--data',
      'sample',
      '--limit',
      '256',
      '--epochs',
      String(epochs),
      '--out',
      out,
      '--backend',
      'wasm',
      '--quiet',
    ];
    const r = robust(args(1));
    expect(r.stderr).toMatch(/backend wasm/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.epochs).toBe(1);
    expect(fs.existsSync(path.join(out, 'checkpoint', 'model.json'))).toBe(true);
    const again = robust([...args(2), '--resume']);
    expect(again.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'))).toHaveLength(2);
  });

  const tiny = [
    'train',
    '--model',
    'resnet20',
    '--width',
    '4',
    '--data',
    'sample',
    '--limit',
    '64',
    '--batch-size',
    '32',
    '--backend',
    'wasm',
    '--quiet',
  ];
  const oneLine = (r: { code: number | null; stderr: string }, message: RegExp) => {
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  };
  const stateOf = (out: string) =>
    JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));

  it('train --resume takes the options left out from the run, refuses different ones in one line (old → new), and records --override', () => {
    const out = path.join(tmpDir('cli-resume'), 'run');
    expect(robust([...tiny, '--epochs', '1', '--lr', '0.05', '--out', out]).code).toBe(0);
    const before = fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8');
    oneLine(
      robust([
        'train',
        '--out',
        out,
        '--resume',
        '--data',
        'sample',
        '--limit',
        '128',
        '--lr',
        '0.01',
        '--backend',
        'wasm',
        '--quiet',
      ]),
      // evalLimit follows limit: only what was set differently is listed
      /: --limit 64 → 128, --lr 0\.05 → 0\.01 .*set --override to continue/,
    );
    expect(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8')).toBe(before);
    // Only --out and a longer --epochs: the run continues as it was, extended.
    const extended = robust([
      'train',
      '--out',
      out,
      '--resume',
      '--epochs',
      '2',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(extended.code).toBe(0);
    expect(extended.stderr).toMatch(/resuming with epochs 1 → 2 \(extended\)/);
    expect(extended.stderr).toMatch(/resnet20 on fashion-mnist-sample \(64 train/);
    let state = stateOf(out);
    expect([
      state.config.lr,
      state.config.limit,
      state.config.width,
      state.config.epochs,
      state.log.length,
    ]).toEqual([0.05, 64, 4, 2, 2]);
    const overridden = robust([
      'train',
      '--out',
      out,
      '--resume',
      '--epochs',
      '3',
      '--lr',
      '0.01',
      '--override',
      '--backend',
      'wasm',
      '--quiet',
    ]);
    expect(overridden.code).toBe(0);
    state = stateOf(out);
    expect(state.config.lr).toBe(0.01);
    expect(
      state.changes.map((c: { changes: string[]; override: boolean }) => [
        c.changes.join(', '),
        c.override,
      ]),
    ).toEqual([
      ['epochs 1 → 2 (extended)', false],
      ['lr 0.05 → 0.01, epochs 2 → 3 (extended)', true],
    ]);
    oneLine(
      robust([
        'train',
        '--out',
        out,
        '--resume',
        '--width',
        '8',
        '--override',
        '--backend',
        'wasm',
        '--quiet',
      ]),
      /--width 4 → 8; these cannot change on resume \(start a new run in another --out folder, or with --force\)/,
    );
  });

  it('train --out into a folder holding a run or other files refuses without --resume or --force; --force starts over', () => {
    const root = tmpDir('cli-out');
    const other = path.join(root, 'notes');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'log.json'), '"mine"');
    oneLine(
      robust([...tiny, '--epochs', '1', '--out', other]),
      /is not empty \(log.json\) and holds no run.*set --force/,
    );
    oneLine(
      robust([...tiny, '--epochs', '1', '--out', other, '--resume']),
      /holds no run to resume/,
    );
    expect(fs.readFileSync(path.join(other, 'log.json'), 'utf8')).toBe('"mine"');
    const out = path.join(root, 'run');
    expect(robust([...tiny, '--epochs', '1', '--seed', '1', '--out', out]).code).toBe(0);
    fs.mkdirSync(path.join(out, 'best')); // as an adversarial run leaves it: must not survive a restart
    const before = fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin'));
    oneLine(
      robust([...tiny, '--epochs', '1', '--seed', '2', '--out', out]),
      /holds a training run: set --resume to continue it or --force/,
    );
    expect(fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin')).equals(before)).toBe(true);
    oneLine(robust([...tiny, '--epochs', '1', '--out', out, '--resume', '--force']), /not both/);
    expect(robust([...tiny, '--epochs', '1', '--seed', '2', '--out', out, '--force']).code).toBe(0);
    expect(stateOf(out).config.seed).toBe(2);
    expect(fs.existsSync(path.join(out, 'best'))).toBe(false);
  });

  it('train that diverges (--weight-decay 1e30) ends with one error line and exit 2, writing no non-finite checkpoint', () => {
    const out = path.join(tmpDir('cli-diverge'), 'run');
    const r = robust([
      ...tiny,
      '--epochs',
      '1',
      '--weight-decay',
      '1e30',
      '--checkpoint-every',
      '1',
      '--out',
      out,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/internal error|\bat .*\.js:\d+/);
    expect(r.stderr.trim().split('\n').pop()).toMatch(
      /^robust: training diverged: .* at epoch 1, batch \d+ \(lower lr or weightDecay/,
    );
    if (fs.existsSync(path.join(out, 'checkpoint'))) {
      const b = fs.readFileSync(path.join(out, 'checkpoint', 'weights.bin'));
      expect(new Float32Array(b.buffer, b.byteOffset, b.length / 4).every(Number.isFinite)).toBe(
        true,
      );
    }
  });

  it('Ctrl-C stops after the current batch with a checkpoint (exit 130); --resume finishes the run', async () => {
    const out = path.join(tmpDir('cli-sigint'), 'run');
    const args = [
      'train',
      '--model',
      'resnet20',
      '--width',
      '4',
      '--data',
      'sample',
      '--limit',
      '640',
      '--batch-size',
      '32',
      '--epochs',
      '1',
      '--checkpoint-every',
      '0',
      '--out',
      out,
      '--backend',
      'wasm',
    ];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/batch \d+\/20/.test(stderr) && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(stderr).toMatch(/stopped; checkpoint saved/);
    expect(code).toBe(130);
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.batch).toBeGreaterThan(0);
    expect(state.batch).toBeLessThan(20);
    const resumed = robust([...args, '--resume', '--quiet']);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'))).toHaveLength(1);
  });

  it('a run killed with SIGKILL mid-epoch resumes from its checkpoint and ends as an uninterrupted run', async () => {
    const root = tmpDir('cli-kill');
    const args = (out: string) => [
      'train',
      '--model',
      'resnet20',
      '--width',
      '4',
      '--data',
      'sample',
      '--limit',
      '320',
      '--eval-limit',
      '200',
      '--batch-size',
      '32',
      '--epochs',
      '2',
      '--checkpoint-every',
      '3',
      '--threads',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--out',
      out,
    ];
    const straight = robust(args(path.join(root, 'straight')));
    expect(straight.code).toBe(0);
    const out = path.join(root, 'killed');
    const child = spawn(process.execPath, [BIN, ...args(out)], { stdio: 'ignore' });
    const stateFile = path.join(out, 'checkpoint', 'state.json');
    // Kill as soon as a checkpoint from the middle of epoch 2 exists.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        try {
          const st = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
          if (st.epoch === 1 && st.batch > 0) {
            child.kill('SIGKILL');
            clearInterval(poll);
            resolve();
          }
        } catch {
          /* not written yet */
        }
      }, 20);
    });
    await new Promise((r) => child.on('exit', r));
    const resumed = robust([...args(out), '--resume']);
    expect(resumed.code).toBe(0);
    const logA = JSON.parse(fs.readFileSync(path.join(root, 'straight', 'log.json'), 'utf8'));
    const logB = JSON.parse(fs.readFileSync(path.join(out, 'log.json'), 'utf8'));
    expect(logB.map((e: { test_acc: number }) => e.test_acc)).toEqual(
      logA.map((e: { test_acc: number }) => e.test_acc),
    );
    expect(logB[1].train_loss).toBeCloseTo(logA[1].train_loss, 6);
  });
});
