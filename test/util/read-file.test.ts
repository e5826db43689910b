/**
 * Every file robust reads from the user is read only if it is a regular file under a cap: a link
 * to /dev/zero (stat size 0, endless content) or a FIFO (blocks until a writer comes) is refused
 * in one line, at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { initBackend } from '../../backend/index.js';
import { createModel } from '../../models/zoo.js';
import {
  loadModel,
  readOptimizerState,
  readState,
  saveCheckpoint,
} from '../../models/checkpoint.js';
import { loadCifar10, TEST_FILE, TRAIN_FILES } from '../../data/cifar10.js';
import { FASHION_FILES, loadFashionMnist } from '../../data/fashion-mnist.js';
import { prepareData } from '../../data/index.js';
import { readJsonFile } from '../../util/json-file.js';
import { readRegularFile } from '../../util/read-file.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

/**
 * Unblocks a reader stuck opening `fifo` (so that code which blocks fails the test instead of
 * hanging it): from `afterMs` on it opens the write end without blocking, which succeeds only
 * while a reader waits, and closes it at once, so the reader sees an empty file.
 */
function fifoWatchdog(fifo: string, afterMs: number): ChildProcess {
  const script = `const fs = require('fs'); const f = process.argv[1];
    setTimeout(() => setInterval(() => { try { fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch {} }, 50), ${afterMs});
    setTimeout(() => process.exit(0), 20000);`;
  return spawn(process.execPath, ['-e', script, fifo], { stdio: 'ignore' });
}

type Special = 'a link to /dev/zero' | 'a FIFO';
const SPECIALS: Special[] = ['a link to /dev/zero', 'a FIFO'];

/** Replaces `file` by a special file; returns a watchdog to stop for FIFOs. */
function makeSpecial(file: string, kind: Special): ChildProcess | null {
  fs.rmSync(file, { force: true });
  if (kind === 'a link to /dev/zero') {
    fs.symlinkSync('/dev/zero', file);
    return null;
  }
  execFileSync('mkfifo', [file]);
  return fifoWatchdog(file, 1500);
}

const idx = (dims: number[], body: Uint8Array) => {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(0x800 + dims.length, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return zlib.gzipSync(Buffer.concat([head, body]));
};

/** Each kind of file robust reads: a folder builder with valid files, the file to replace, and the read. */
interface Case {
  what: string;
  setup: (dir: string) => Promise<void> | void;
  file: string;
  read: (dir: string) => unknown;
}

let checkpoint: string;
const cases: Case[] = [
  {
    what: 'a Fashion-MNIST IDX file',
    setup: (dir) => {
      for (const f of Object.values(FASHION_FILES))
        fs.writeFileSync(
          path.join(dir, f),
          f.includes('images')
            ? idx([1, 28, 28], new Uint8Array(784))
            : idx([1], new Uint8Array(1)),
        );
    },
    file: FASHION_FILES.trainImages,
    read: (dir) => loadFashionMnist(dir),
  },
  {
    what: 'a CIFAR-10 batch in a folder',
    setup: (dir) => {
      for (const f of [...TRAIN_FILES, TEST_FILE])
        fs.writeFileSync(path.join(dir, f), new Uint8Array(3073));
    },
    file: 'data_batch_2.bin',
    read: (dir) => loadCifar10(dir),
  },
  {
    what: 'a CIFAR-10 archive given with --from',
    setup: () => undefined,
    file: 'cifar-10-binary.tar.gz',
    read: (dir) =>
      prepareData('cifar10', {
        from: path.join(dir, 'cifar-10-binary.tar.gz'),
        dataDir: path.join(dir, 'data'),
      }),
  },
  {
    what: 'model.json',
    setup: (dir) => fs.cpSync(checkpoint, dir, { recursive: true }),
    file: 'model.json',
    read: (dir) => loadModel(dir),
  },
  {
    what: 'a weight shard',
    setup: (dir) => fs.cpSync(checkpoint, dir, { recursive: true }),
    file: 'weights.bin',
    read: (dir) => loadModel(dir),
  },
  {
    what: 'state.json',
    setup: (dir) => fs.cpSync(checkpoint, dir, { recursive: true }),
    file: 'state.json',
    read: (dir) => readState(dir),
  },
  {
    what: 'optimizer.bin',
    setup: (dir) => fs.cpSync(checkpoint, dir, { recursive: true }),
    file: 'optimizer.bin',
    read: (dir) => readOptimizerState(dir, [[2, 2]]),
  },
  {
    what: 'an eval config (JSON)',
    setup: () => undefined,
    file: 'config.json',
    read: (dir) => readJsonFile(path.join(dir, 'config.json'), 'missing'),
  },
];

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  const m = createModel('resnet20', {
    inputShape: [8, 8, 3],
    numClasses: 3,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    width: 2,
  });
  checkpoint = path.join(tmpDir('special-ckpt'), 'ckpt');
  await saveCheckpoint(checkpoint, m, { state: { epoch: 1 }, optimizer: [new Float32Array(4)] });
  m.dispose();
});

const watchdogs: ChildProcess[] = [];
afterAll(() => watchdogs.forEach((w) => w.kill()));

describe('special files are refused in one line, at once', () => {
  for (const c of cases) {
    for (const kind of SPECIALS) {
      it(`${c.what} that is ${kind}`, async () => {
        const dir = tmpDir('special');
        await c.setup(dir);
        const w = makeSpecial(path.join(dir, c.file), kind);
        if (w) watchdogs.push(w);
        const started = Date.now();
        let err: unknown;
        try {
          await c.read(dir);
        } catch (e) {
          err = e;
        }
        w?.kill();
        expect(Date.now() - started).toBeLessThan(1000);
        expect(err, String(err)).toBeInstanceOf(RobustError);
        const message = (err as Error).message;
        expect(message).toContain(c.file);
        expect(message).toMatch(kind === 'a FIFO' ? /is a FIFO/ : /is a character device/);
        expect(message).not.toContain('\n');
      }, 20_000);
    }
  }
});

describe('readRegularFile', () => {
  it('returns exactly the bytes of any regular file within the cap, and refuses any over it (property)', () => {
    const dir = tmpDir('read-file');
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.integer({ min: 0, max: 6000 }),
        (bytes, cap) => {
          const file = path.join(dir, 'f.bin');
          fs.writeFileSync(file, bytes);
          let got: Buffer | RobustError;
          try {
            got = readRegularFile(file, { maxBytes: cap, what: 'test file' });
          } catch (e) {
            got = e as RobustError;
          }
          if (bytes.length > cap) {
            expect(got).toBeInstanceOf(RobustError);
            expect((got as Error).message).toMatch(/more than a test file can be/);
          } else expect(Buffer.compare(got as Buffer, Buffer.from(bytes))).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a folder, a missing file and a file over the cap are each one line naming the file', () => {
    const dir = tmpDir('read-file-bad');
    expect(() => readRegularFile(dir, { maxBytes: 10, what: 'x' })).toThrow(/is a folder/);
    expect(() => readRegularFile(path.join(dir, 'nope'), { maxBytes: 10, what: 'x' })).toThrow(
      /nope: no such file/,
    );
    expect(() =>
      readRegularFile(path.join(dir, 'nope'), { maxBytes: 10, what: 'x', missing: 'where is it' }),
    ).toThrow(/^where is it$/);
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(11));
    expect(() => readRegularFile(path.join(dir, 'big'), { maxBytes: 10, what: 'x' })).toThrow(
      /big: 11 bytes, more than a x can be/,
    );
  });
});
