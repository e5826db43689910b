import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as tar from 'tar';
import {
  BATCH_BYTES,
  loadCifar10,
  parseCifarBatches,
  parseCifarRecords,
  TRAIN_FILES,
  TEST_FILE,
} from '../../data/cifar10.js';
import { cifar10TestFromFile } from '../../data/cifar10-file.js';
import { prepareData, loadData } from '../../data/index.js';
import { archiveOrigin } from '../../data/origin.js';
import { robust } from '../cli/fixtures.js';
import { RobustError } from '../../util/errors.js';
import { HAS_SHARED_CIFAR, missing, SHARED_DATA, tmpDir } from '../helpers.js';

if (!HAS_SHARED_CIFAR)
  console.warn(`skipping the real CIFAR-10 test: ${SHARED_DATA} is absent (it exists on CI)`);

/** n records whose pixel values encode (record, channel, position). */
function records(n: number, label = (i: number) => i % 10): Uint8Array {
  const b = new Uint8Array(n * 3073);
  for (let i = 0; i < n; i++) {
    b[i * 3073] = label(i);
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < 1024; p++) b[i * 3073 + 1 + c * 1024 + p] = (i * 7 + c * 50 + p) % 256;
  }
  return b;
}

/** A whole batch (10,000 records, as the official files): one buffer per label rule, made once. */
const batches = new Map<string, Uint8Array>();
function batch(labels: 'cycle' | 'zero' = 'cycle'): Uint8Array {
  let b = batches.get(labels);
  if (!b) batches.set(labels, (b = records(10_000, labels === 'zero' ? () => 0 : undefined)));
  return b;
}

/** The official layout with whole synthetic batches in DIR/src/cifar-10-batches-bin, and its .tar.gz. */
async function officialLayout(dir: string, name = 'c.tar.gz'): Promise<string> {
  const inner = path.join(dir, 'src', 'cifar-10-batches-bin');
  fs.mkdirSync(inner, { recursive: true });
  for (const f of [...TRAIN_FILES, TEST_FILE]) fs.writeFileSync(path.join(inner, f), batch());
  const archive = path.join(dir, name);
  await tar.c({ gzip: { level: 1 }, file: archive, cwd: path.join(dir, 'src') }, [
    'cifar-10-batches-bin',
  ]);
  return archive;
}

describe('CIFAR-10 binary format', () => {
  it('turns planar records into NHWC pixels with their labels', () => {
    const set = parseCifarRecords([records(3)], 'x.bin');
    expect(set.count).toBe(3);
    expect(Array.from(set.labels)).toEqual([0, 1, 2]);
    // image 2, pixel (row 1, col 3) = position 35, channel 1 (green)
    expect(set.images[2 * 3072 + 35 * 3 + 1]).toBe((2 * 7 + 50 + 35) % 256);
  });

  it('rejects truncated files and bad labels with an error naming the file', () => {
    const truncated = records(2).subarray(0, 3073 + 100);
    expect(() => parseCifarRecords([truncated], 'data_batch_1.bin')).toThrow(RobustError);
    expect(() => parseCifarRecords([truncated], 'data_batch_1.bin')).toThrow(/data_batch_1\.bin/);
    expect(() => parseCifarRecords([records(2, () => 12)], 'b.bin')).toThrow(/label 12/);
    expect(() => parseCifarRecords([new Uint8Array(0)], 'empty.bin')).toThrow(RobustError);
  });

  it('a batch file is 10,000 records exactly: one cut at a record boundary, or longer, is refused naming both sizes', () => {
    expect(parseCifarBatches([batch()], 'test_batch.bin').count).toBe(10_000);
    expect(BATCH_BYTES).toBe(30_730_000);
    for (const n of [1, 2, 9_999])
      expect(() => parseCifarBatches([batch().subarray(0, n * 3073)], 'test_batch.bin')).toThrow(
        `test_batch.bin: ${n * 3073} bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): truncated or not CIFAR-10`,
      );
    const longer = new Uint8Array(BATCH_BYTES + 3073);
    expect(() => parseCifarBatches([longer], 'test_batch.bin')).toThrow(
      `test_batch.bin: ${BATCH_BYTES + 3073} bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): not CIFAR-10`,
    );
  });

  it('the loaders refuse a batch cut at a record boundary: robust data, robust eval, and a file picked in a page', async () => {
    const dir = tmpDir('cifar-cut');
    await officialLayout(dir);
    const inner = path.join(dir, 'src', 'cifar-10-batches-bin');
    fs.writeFileSync(path.join(inner, TEST_FILE), batch().subarray(0, 9_000 * 3073));
    const expected = `${path.join(dir, 'src')}: ${TEST_FILE}: ${9_000 * 3073} bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): truncated or not CIFAR-10`;
    await expect(loadCifar10(path.join(dir, 'src'))).rejects.toThrow(expected);
    await expect(
      prepareData('cifar10', { from: path.join(dir, 'src'), dataDir: path.join(dir, 'data') }),
    ).rejects.toThrow(expected);
    const picked = new File([fs.readFileSync(path.join(inner, TEST_FILE))], TEST_FILE);
    await expect(cifar10TestFromFile(picked, () => undefined)).rejects.toThrow(
      `${TEST_FILE}: ${9_000 * 3073} bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): truncated or not CIFAR-10`,
    );
    // the same file whole is taken, as the CLI takes it
    const whole = new File([batch()], TEST_FILE);
    expect((await cifar10TestFromFile(whole, () => undefined)).count).toBe(10_000);
    // an archive whose training batch is cut at a record boundary
    fs.writeFileSync(path.join(inner, TEST_FILE), batch());
    fs.writeFileSync(path.join(inner, 'data_batch_2.bin'), batch().subarray(0, 3073));
    const archive = path.join(dir, 'cut.tar');
    await tar.c({ file: archive, cwd: path.join(dir, 'src') }, ['cifar-10-batches-bin']);
    const asPicked = new File([fs.readFileSync(archive)], 'cut.tar');
    await expect(cifar10TestFromFile(asPicked, () => undefined)).rejects.toThrow(
      'cut.tar: data_batch_2.bin: 3073 bytes, but a CIFAR-10 batch file is 30730000 bytes',
    );
    await expect(loadCifar10(archive)).rejects.toThrow(
      `${archive}: data_batch_2.bin: 3073 bytes, but a CIFAR-10 batch file is 30730000 bytes`,
    );
  });

  it('reads the official archive layout from a .tar.gz and from a folder', async () => {
    const dir = tmpDir('cifar');
    const archive = await officialLayout(dir);
    for (const source of [archive, path.join(dir, 'src')]) {
      const split = await loadCifar10(source);
      expect(split.train.count).toBe(50_000);
      expect(split.test.count).toBe(10_000);
    }
    const dataDir = path.join(dir, 'data');
    await prepareData('cifar10', { from: archive, dataDir });
    const loaded = await loadData('cifar10', { dataDir, limit: 5 });
    expect(loaded.train.count).toBe(5);
  });

  it('refuses an archive without the batch files', async () => {
    const dir = tmpDir('cifar-bad');
    fs.writeFileSync(path.join(dir, 'other.txt'), 'hello');
    const archive = path.join(dir, 'bad.tar.gz');
    await tar.c({ gzip: true, file: archive, cwd: dir }, ['other.txt']);
    await expect(loadCifar10(archive)).rejects.toThrow(/missing data_batch_1\.bin/);
    fs.writeFileSync(path.join(dir, 'garbage.tar.gz'), 'not an archive at all');
    await expect(loadCifar10(path.join(dir, 'garbage.tar.gz'))).rejects.toThrow(RobustError);
  });

  it.skipIf(missing(HAS_SHARED_CIFAR))(
    'loads the real CIFAR-10 archive: 50,000 / 10,000 images, 10 balanced classes',
    async () => {
      const split = await loadCifar10(path.join(SHARED_DATA, 'cifar10', 'cifar-10-binary.tar.gz'));
      expect(split.train.count).toBe(50000);
      expect(split.test.count).toBe(10000);
      const perClass = new Array(10).fill(0);
      for (const l of split.test.labels) perClass[l]++;
      expect(perClass).toEqual(new Array(10).fill(1000));
      let sum = 0;
      for (let i = 0; i < 3072 * 1000; i += 3) sum += split.train.images[i];
      expect(sum / (1024 * 1000) / 255).toBeCloseTo(split.mean[0], 1);
    },
  );

  it('--from a local archive says in one line whether it is the official one (by its MD5)', async () => {
    const dir = tmpDir('cifar-origin');
    const archive = await officialLayout(dir, 'repacked.tar.gz');
    const md5 = crypto.createHash('md5').update(fs.readFileSync(archive)).digest('hex');
    const notes: string[] = [];
    await prepareData('cifar10', {
      from: archive,
      dataDir: path.join(dir, 'data'),
      note: (l) => notes.push(l),
    });
    expect(notes).toEqual([
      `${archive}: not the official archive (md5 ${md5}): its members were checked but its origin is not`,
    ]);
    notes.length = 0;
    await prepareData('cifar10', {
      from: path.join(dir, 'src'),
      dataDir: path.join(dir, 'data'),
      note: (l) => notes.push(l),
    });
    expect(notes).toEqual([
      expect.stringMatching(
        /a folder, not the official archive: its batch files were checked but their origin is not/,
      ),
    ]);
    // the line for an archive whose MD5 is the official one
    expect(archiveOrigin(archive, md5, md5)).toBe(
      `${archive}: verified: the official archive (MD5 ${md5})`,
    );
    // and on the command line: one line on stderr, the summary on stdout
    const r = robust(['data', 'cifar10', '--from', archive, '--data-dir', path.join(dir, 'cli')]);
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${archive}: not the official archive (md5 ${md5}): its members were checked but its origin is not`,
    ]);
    expect(r.stdout).toMatch(/50000 train \/ 10000 test images/);
  });

  it('a folder with batches both at its top and in cifar-10-batches-bin/ is refused in one line', async () => {
    const dir = tmpDir('cifar-twice');
    fs.mkdirSync(path.join(dir, 'cifar-10-batches-bin'));
    for (const f of [...TRAIN_FILES, TEST_FILE])
      fs.writeFileSync(path.join(dir, 'cifar-10-batches-bin', f), batch());
    fs.writeFileSync(path.join(dir, TEST_FILE), batch('zero')); // a planted copy with other labels
    await expect(loadCifar10(dir)).rejects.toThrow(
      /test_batch\.bin both directly and in cifar-10-batches-bin/,
    );
  });

  describe('a prepared set with a batch cut short', () => {
    afterEach(() => vi.unstubAllGlobals());

    /** DATA/cifar10/cifar-10-batches-bin with every batch of its size (sparse files) but data_batch_3.bin cut. */
    function cutPrepared(dataDir: string): string {
      const prepared = path.join(dataDir, 'cifar10', 'cifar-10-batches-bin');
      fs.mkdirSync(prepared, { recursive: true });
      for (const f of [...TRAIN_FILES, TEST_FILE]) {
        fs.writeFileSync(path.join(prepared, f), '');
        fs.truncateSync(
          path.join(prepared, f),
          f === 'data_batch_3.bin' ? 5000 * 3073 : BATCH_BYTES,
        );
      }
      return path.join(prepared, 'data_batch_3.bin');
    }
    const cut = (file: string) =>
      `${file}: ${5000 * 3073} bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): truncated or not CIFAR-10`;

    it('says why in one line before downloading it again (the download is stubbed: no network in tests)', async () => {
      const dataDir = tmpDir('cifar-cut-prepared');
      const file = cutPrepared(dataDir);
      const events: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        events.push(`fetch ${url}`);
        return new Response(new Uint8Array(64)); // not the archive: its MD5 stops the download
      });
      await expect(
        prepareData('cifar10', { dataDir, note: (l) => events.push(l) }),
      ).rejects.toThrow(/MD5 .* does not match/);
      expect(events).toEqual([
        `the prepared CIFAR-10 is damaged (${cut(file)}): downloading https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz again`,
        'fetch https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
      ]);
    });

    it('a sound prepared set stays without a fetch; one with a record eval refuses says why before fetching', async () => {
      const dataDir = tmpDir('cifar-sound-prepared');
      const file = cutPrepared(dataDir);
      fs.truncateSync(file, BATCH_BYTES); // every batch whole: records of label 0
      const events: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        events.push(`fetch ${url}`);
        return new Response(new Uint8Array(64));
      });
      const prepared = path.dirname(file);
      await prepareData('cifar10', { dataDir, note: (l) => events.push(l) });
      expect(events).toEqual([`CIFAR-10 is already prepared in ${prepared}`]);
      // a label eval's loader refuses: the same reason, then the fetch
      const testFile = path.join(prepared, TEST_FILE);
      const fd = fs.openSync(testFile, 'r+');
      fs.writeSync(fd, Uint8Array.of(200), 0, 1, 5 * 3073);
      fs.closeSync(fd);
      events.length = 0;
      await expect(
        prepareData('cifar10', { dataDir, note: (l) => events.push(l) }),
      ).rejects.toThrow(/MD5 .* does not match/);
      expect(events[0]).toMatch(
        /^the prepared CIFAR-10 is damaged \(.*test_batch\.bin: record 5 has label 200, outside 0–9\): downloading .* again$/,
      );
      expect(events[1]).toMatch(/^fetch /);
    });

    it('from the archive kept beside it, and with --from: the reason, then the set whole again; a bad --from names both', async () => {
      const dir = tmpDir('cifar-cut-kept');
      const dataDir = path.join(dir, 'data');
      const file = cutPrepared(dataDir);
      const archive = await officialLayout(dir);
      const kept = path.join(dataDir, 'cifar10', 'cifar-10-binary.tar.gz');
      fs.copyFileSync(archive, kept);
      const notes: string[] = [];
      await prepareData('cifar10', { dataDir, note: (l) => notes.push(l) });
      expect(notes[0]).toBe(
        `the prepared CIFAR-10 is damaged (${cut(file)}): unpacking it again from ${kept}`,
      );
      expect(notes).toHaveLength(2); // and the archive's origin
      expect(fs.statSync(file).size).toBe(BATCH_BYTES);
      // --from a good copy: said, then replaced
      fs.truncateSync(file, 5000 * 3073);
      notes.length = 0;
      await prepareData('cifar10', { dataDir, from: archive, note: (l) => notes.push(l) });
      expect(notes[0]).toBe(
        `the prepared CIFAR-10 is damaged (${cut(file)}): replacing it from ${archive}`,
      );
      expect(fs.statSync(file).size).toBe(BATCH_BYTES);
      // --from a bad copy: refused in one line naming both, the prepared set left as it was
      fs.truncateSync(file, 5000 * 3073);
      const bad = path.join(dir, 'src', 'cifar-10-batches-bin');
      fs.truncateSync(path.join(bad, TEST_FILE), 3073);
      await expect(
        prepareData('cifar10', { dataDir, from: path.join(dir, 'src'), note: () => {} }),
      ).rejects.toThrow(
        `${path.join(dir, 'src')}: ${TEST_FILE}: 3073 bytes, but a CIFAR-10 batch file is 30730000 bytes (10000 records of 3073): truncated or not CIFAR-10; and the prepared CIFAR-10 is damaged (${cut(file)})`,
      );
      expect(fs.statSync(file).size).toBe(5000 * 3073);
    });
  });
});
