/** Temp files and folders that killed writers left behind are removed by later runs; a live run's are kept. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { removeStaleTemps, writeFileAtomic } from '../../util/atomic.js';
import { robust } from '../cli/fixtures.js';
import { tmpDir } from '../helpers.js';

/** No process has this pid: Linux pids stop at 4,194,304. */
const DEAD_PID = 9_999_999;

type Owner = 'dead' | 'alive' | 'this process, before it started' | 'this process';
const ownerPid = (o: Owner) =>
  o === 'dead' ? DEAD_PID : o === 'alive' ? process.ppid : process.pid;
const ownerTime = (o: Owner) =>
  o === 'this process, before it started'
    ? Math.floor(performance.timeOrigin) - 60_000
    : Date.now();
const stale = (o: Owner) => o === 'dead' || o === 'this process, before it started';

/** A planted temp, as writeFileAtomic / writeDirAtomic name them, with a file inside folders. */
function plant(dir: string, target: string, owner: Owner, folder: boolean, old = false): string {
  const name = `.${target}.tmp-${ownerPid(owner)}-${ownerTime(owner)}${old ? '.old' : ''}`;
  const p = path.join(dir, name);
  if (folder) {
    fs.mkdirSync(p);
    fs.writeFileSync(path.join(p, 'data_batch_1.bin'), Buffer.alloc(1000, 1));
  } else fs.writeFileSync(p, 'partial');
  return name;
}

describe('stale temps', () => {
  it('those of dead processes (or of an earlier process with this pid) go, the rest stays (property)', () => {
    const owner = fc.constantFrom<Owner>(
      'dead',
      'alive',
      'this process, before it started',
      'this process',
    );
    const temp = fc.record({
      target: fc.constantFrom('cifar-10-batches-bin', 'checkpoint', 'log.json', 'a.b'),
      owner,
      folder: fc.boolean(),
      old: fc.boolean(),
      targetExists: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(temp, { maxLength: 6, selector: (t) => `${t.target}${t.owner}${t.old}` }),
        (temps) => {
          const dir = tmpDir('stale');
          const others = [
            '.robust-write-test-1',
            'x.tmp-1-2',
            '.cells.tmp-abc-1',
            'train-images-idx3-ubyte.gz.part',
            'README',
          ];
          for (const o of others) fs.writeFileSync(path.join(dir, o), 'keep');
          const planted = temps.map((t) => {
            if (t.targetExists && !fs.existsSync(path.join(dir, t.target)))
              fs.writeFileSync(path.join(dir, t.target), 'current');
            return { ...t, name: plant(dir, t.target, t.owner, t.folder || t.old, t.old) };
          });
          const targetsBefore = new Map(
            planted.map((t) => [t.target, fs.existsSync(path.join(dir, t.target))]),
          );
          removeStaleTemps(dir);
          for (const o of others) expect(fs.readFileSync(path.join(dir, o), 'utf8')).toBe('keep');
          for (const t of planted)
            expect(fs.existsSync(path.join(dir, t.name)), `${t.name} (${t.owner})`).toBe(
              !stale(t.owner),
            );
          // a stale `.old` whose target is missing is put back as the target, never deleted
          for (const t of planted)
            if (t.old && stale(t.owner) && !targetsBefore.get(t.target))
              expect(fs.existsSync(path.join(dir, t.target, 'data_batch_1.bin'))).toBe(true);
          fs.rmSync(dir, { recursive: true });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('an atomic write cleans its folder of stale temps first', () => {
    const dir = tmpDir('stale-write');
    const gone = plant(dir, 'results.json', 'dead', false);
    const kept = plant(dir, 'results.json', 'alive', false);
    writeFileAtomic(path.join(dir, 'report.html'), 'x');
    expect(fs.readdirSync(dir).sort()).toEqual([kept, 'report.html'].sort());
    expect(gone).not.toBe(kept);
  });

  it("`robust data` (even for the bundled sample) removes the temp folder a killed run left, not a live run's", () => {
    const dataDir = tmpDir('stale-data');
    const cifar = path.join(dataDir, 'cifar10');
    fs.mkdirSync(cifar);
    const gone = plant(cifar, 'cifar-10-batches-bin', 'dead', true);
    const kept = plant(cifar, 'cifar-10-batches-bin', 'alive', true);
    const r = robust(['data', 'fashion-mnist-sample', '--data-dir', dataDir]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(cifar, gone))).toBe(false);
    expect(fs.existsSync(path.join(cifar, kept, 'data_batch_1.bin'))).toBe(true);
  });
});

describe('what an atomic write may replace', () => {
  it('refuses a symbolic link, a named pipe, a device or a folder in the place of a file, and leaves them', () => {
    const dir = tmpDir('atomic-kinds');
    const real = path.join(dir, 'real.csv');
    fs.writeFileSync(real, 'keep');
    const link = path.join(dir, 'link.csv');
    fs.symlinkSync(real, link);
    const folder = path.join(dir, 'folder.csv');
    fs.mkdirSync(folder);
    const targets: [string, RegExp][] = [
      [link, /link\.csv: is a symbolic link, not a file robust may replace/],
      [folder, /folder\.csv: is a folder, not a file robust may replace/],
      ['/dev/null', /^\/dev\/null: is a device, not a file robust may replace/],
    ];
    for (const [target, message] of targets) {
      expect(() => writeFileAtomic(target, 'new')).toThrow(message);
    }
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('keep');
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['folder.csv', 'link.csv', 'real.csv']); // no temp left
    writeFileAtomic(real, 'new'); // a regular file is replaced as before
    expect(fs.readFileSync(real, 'utf8')).toBe('new');
  });
});
