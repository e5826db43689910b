/** Archives and downloads: tar-slip and oversized members are refused; downloads resume, retry and verify. */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadCifar10, readFromArchive, TEST_FILE, TRAIN_FILES } from '../../data/cifar10.js';
import { download } from '../../data/download.js';
import { readTarMembers } from '../../data/archive.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';

/** One ustar entry: type '0' file, '2' symlink, '1' hard link. */
function tarEntry(name: string, data: Buffer = Buffer.alloc(0), type = '0', linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  const sum = h.reduce((s, b) => s + b, 0);
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

function archive(dir: string, entries: Buffer[]): string {
  const file = path.join(dir, `a${crypto.randomUUID()}.tar.gz`);
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat([...entries, Buffer.alloc(1024)])));
  return file;
}

describe('archives', () => {
  const dir = tmpDir('archives');
  const cases: [string, Buffer[], RegExp][] = [
    [
      'a ../ path',
      [tarEntry('cifar-10-batches-bin/../../evil.bin', Buffer.from('x'))],
      /unsafe path/,
    ],
    ['an absolute path', [tarEntry('/tmp/evil.bin', Buffer.from('x'))], /unsafe path/],
    [
      'a symlink out of the folder',
      [
        tarEntry(
          'cifar-10-batches-bin/data_batch_1.bin',
          Buffer.alloc(0),
          '2',
          '../../../etc/passwd',
        ),
      ],
      /points outside/,
    ],
    [
      'a hard link to an absolute path',
      [tarEntry('cifar-10-batches-bin/x', Buffer.alloc(0), '1', '/etc/shadow')],
      /points outside/,
    ],
    [
      'a batch larger than CIFAR-10 batches',
      [tarEntry('cifar-10-batches-bin/data_batch_1.bin', crypto.randomBytes(10_000 * 3073 + 1))],
      /more than a CIFAR-10 batch/,
    ],
    [
      'a decompression bomb',
      [tarEntry('cifar-10-batches-bin/junk.bin', Buffer.alloc(50 * 2 ** 20))],
      /decompression ratio/,
    ],
  ];
  for (const [what, entries, message] of cases) {
    it(`refuses ${what} with a one-line error and writes nothing`, async () => {
      const before = fs.readdirSync(dir).length;
      const err = await readFromArchive(archive(dir, entries)).catch((e) => e);
      expect(err).toBeInstanceOf(RobustError);
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('\n');
      expect(fs.readdirSync(dir).length).toBe(before + 1); // only the archive itself
      expect(fs.existsSync('/tmp/evil.bin')).toBe(false);
    });
  }

  it('reads a safe archive (and ignores members it does not need)', async () => {
    const files = await readFromArchive(
      archive(dir, [
        tarEntry('cifar-10-batches-bin/readme.html', Buffer.from('hi')),
        tarEntry('cifar-10-batches-bin/test_batch.bin', Buffer.from([1, 2, 3])),
      ]),
    );
    expect([...files.keys()]).toEqual(['test_batch.bin']);
    expect(Array.from(files.get('test_batch.bin')!)).toEqual([1, 2, 3]);
  });

  it('a file that is not an archive is a one-line error', async () => {
    const file = path.join(dir, 'corrupt.tar.gz');
    fs.writeFileSync(file, Buffer.from('not a gzip at all'));
    await expect(loadCifar10(file)).rejects.toThrow(/not a tar archive/);
  });
});

/** One CIFAR-like record per batch file: a small archive the loader accepts. */
const BATCHES = [...TRAIN_FILES, TEST_FILE];
const record = (i: number) =>
  Buffer.from(Uint8Array.from({ length: 3073 }, (_, k) => (k === 0 ? i : (i * 31 + k) % 256)));
const validTar = () =>
  Buffer.concat([
    ...BATCHES.map((f, i) => tarEntry(`cifar-10-batches-bin/${f}`, record(i))),
    Buffer.alloc(1024),
  ]);

/** `readFromArchive(file)` must give exactly the six small batches, and quickly. */
async function expectSixBatches(file: string): Promise<void> {
  const started = Date.now();
  const files = await readFromArchive(file);
  expect(Date.now() - started).toBeLessThan(3000);
  expect([...files.keys()].sort()).toEqual([...BATCHES].sort());
  BATCHES.forEach((f, i) => expect(Buffer.from(files.get(f)!).equals(record(i))).toBe(true));
}

describe('archives: what follows the end-of-archive marker, and how much is unpacked', () => {
  const dir = tmpDir('archives-tail');
  // 64 MiB of zeros in about 64 KB: 32 copies make the 2 MB archive that unpacks to 2 GiB.
  const zeros64 = zlib.gzipSync(Buffer.alloc(64 * 2 ** 20), { level: 9 });

  it('any bytes after the marker (zeros up to 2 GiB, garbage, a planted member) are not read (property)', async () => {
    const tail = fc.oneof(
      fc.record({
        kind: fc.constant('zeros'),
        gzMembers: fc.integer({ min: 0, max: 32 }),
        inner: fc.integer({ min: 0, max: 4 * 2 ** 20 }),
      }),
      fc.record({
        kind: fc.constant('garbage'),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 200_000 }),
        raw: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('planted'),
        name: fc.constantFrom(...BATCHES),
        prefix: fc.constantFrom('', 'cifar-10-batches-bin/', 'zzz/'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(tail, async (t) => {
        let bytes: Buffer;
        if (t.kind === 'zeros')
          bytes = Buffer.concat([
            zlib.gzipSync(Buffer.concat([validTar(), Buffer.alloc(t.inner)])),
            ...Array(t.gzMembers).fill(zeros64),
          ]);
        else if (t.kind === 'garbage')
          bytes = t.raw
            ? Buffer.concat([zlib.gzipSync(validTar()), Buffer.from(t.bytes)])
            : zlib.gzipSync(Buffer.concat([validTar(), Buffer.from(t.bytes)]));
        else
          bytes = zlib.gzipSync(
            Buffer.concat([
              validTar(),
              tarEntry(`${t.prefix}${t.name}`, record(99)),
              Buffer.alloc(1024),
            ]),
          );
        const file = path.join(dir, `t${crypto.randomUUID()}.tar.gz`);
        fs.writeFileSync(file, bytes);
        if (t.kind === 'garbage' && t.raw) {
          // Bytes after the gzip stream itself (not zeros) make zlib fail: a one-line error is as good.
          const started = Date.now();
          const r = await readFromArchive(file).catch((e) => e);
          expect(Date.now() - started).toBeLessThan(3000);
          if (r instanceof Error) expect(r).toBeInstanceOf(RobustError);
          else expect([...r.keys()].sort()).toEqual([...BATCHES].sort());
        } else await expectSixBatches(file);
        fs.rmSync(file);
      }),
      {
        numRuns: 25,
        examples: [
          [{ kind: 'zeros', gzMembers: 1, inner: 0 }],
          [{ kind: 'zeros', gzMembers: 32, inner: 0 }],
          [{ kind: 'zeros', gzMembers: 0, inner: 4 * 2 ** 20 }],
        ],
      },
    );
  }, 60_000);

  it('a plain (not gzipped) tar is read the same way', async () => {
    const file = path.join(dir, 'plain.tar');
    fs.writeFileSync(file, Buffer.concat([validTar(), Buffer.alloc(300_000)]));
    await expectSixBatches(file);
  });

  it('the unpacked stream is capped: an archive whose marker lies past the cap is refused, any other is read (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 40_000 }), { maxLength: 6 }),
        fc.integer({ min: 1024, max: 200_000 }),
        async (junk, cap) => {
          const entries = [
            tarEntry('cifar-10-batches-bin/test_batch.bin', record(1)),
            ...junk.map((n, i) =>
              tarEntry(`cifar-10-batches-bin/junk${i}.bin`, Buffer.alloc(n, i + 1)),
            ),
          ];
          const streamBytes = entries.reduce((n, e) => n + e.length, 0) + 1024; // through the end-of-archive marker
          const file = archive(dir, entries);
          const limits = {
            wanted: new Set([TEST_FILE]),
            maxMemberBytes: 3073,
            memberWhat: 'CIFAR-10 batch',
            maxBytes: cap,
            what: 'CIFAR-10 archive',
          };
          const r = await readTarMembers(file, limits).catch((e) => e);
          if (streamBytes > cap) {
            expect(r).toBeInstanceOf(RobustError);
            expect(r.message).toMatch(/more than|larger than/);
          } else expect([...r.members.keys()]).toEqual([TEST_FILE]);
          fs.rmSync(file);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('archives: members that map to the same file', () => {
  const dir = tmpDir('archives-dup');
  const names = fc.array(
    fc.tuple(
      fc.constantFrom('', 'cifar-10-batches-bin/', 'zzz/', 'a/b/'),
      fc.constantFrom(...BATCHES, 'readme.html'),
    ),
    { minLength: 1, maxLength: 10 },
  );

  it('two members whose names map to one batch file are refused; otherwise each member is read as written (property)', async () => {
    await fc.assert(
      fc.asyncProperty(names, async (members) => {
        const file = archive(
          dir,
          members.map(([prefix, name], i) => tarEntry(`${prefix}${name}`, record(i))),
        );
        const counts = new Map<string, number>();
        for (const [, name] of members) counts.set(name, (counts.get(name) ?? 0) + 1);
        const duplicated = BATCHES.filter((b) => (counts.get(b) ?? 0) > 1);
        const r = await readFromArchive(file).catch((e) => e);
        if (duplicated.length) {
          expect(r).toBeInstanceOf(RobustError);
          expect(r.message).toMatch(/two members map to/);
          expect(r.message).not.toContain('\n');
        } else {
          members.forEach(
            ([, name], i) =>
              BATCHES.includes(name) &&
              expect(Buffer.from(r.get(name)).equals(record(i))).toBe(true),
          );
          expect(r.size).toBe(members.filter(([, n]) => BATCHES.includes(n)).length);
        }
        fs.rmSync(file);
      }),
      {
        numRuns: 100,
        examples: [
          [
            [
              ['cifar-10-batches-bin/', TEST_FILE],
              ['zzz/', TEST_FILE],
            ],
          ],
        ],
      },
    );
  });

  it('a member cut short by the end of the stream is refused, not read as a smaller batch', async () => {
    const whole = Buffer.concat([
      tarEntry('cifar-10-batches-bin/test_batch.bin', Buffer.concat([record(1), record(2)])),
    ]);
    const file = path.join(dir, 'cut.tar.gz');
    fs.writeFileSync(file, zlib.gzipSync(whole.subarray(0, 512 + 3073)));
    await expect(readFromArchive(file)).rejects.toThrow(/truncated/i);
  });
});

describe('downloads', () => {
  const payload = crypto.randomBytes(200_000);
  const md5 = crypto.createHash('md5').update(payload).digest('hex');
  let server: http.Server;
  let base = '';
  const requests: string[] = [];
  let mode: 'flaky' | 'ok' | 'down' = 'ok';
  let flakyCount = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      requests.push(range ? `range ${range[1]}` : 'full');
      if (mode === 'down') {
        res.writeHead(503).end();
        return;
      }
      const from = range ? Number(range[1]) : 0;
      const body = payload.subarray(from);
      res.writeHead(range ? 206 : 200, {
        'content-length': body.length,
        ...(range
          ? { 'content-range': `bytes ${from}-${payload.length - 1}/${payload.length}` }
          : {}),
      });
      if (mode === 'flaky' && flakyCount++ < 2) {
        // send a third of what is left, then drop the connection
        res.write(body.subarray(0, Math.floor(body.length / 3)), () => res.destroy());
        return;
      }
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('resumes after dropped connections (HTTP Range) and verifies the MD5', async () => {
    mode = 'flaky';
    flakyCount = 0;
    requests.length = 0;
    const target = path.join(tmpDir('dl'), 'file.bin');
    await download(`${base}/file.bin`, target, md5, { backoffMs: 1, quiet: true });
    expect(fs.readFileSync(target).equals(payload)).toBe(true);
    expect(fs.existsSync(`${target}.part`)).toBe(false);
    expect(requests[0]).toBe('full');
    expect(requests.slice(1).every((r) => r.startsWith('range '))).toBe(true);
    expect(requests.length).toBe(3);
  });

  it('a checksum mismatch leaves no file under the final name (nor a partial one)', async () => {
    mode = 'ok';
    const target = path.join(tmpDir('dl-md5'), 'file.bin');
    await expect(
      download(`${base}/file.bin`, target, '0'.repeat(32), { backoffMs: 1, quiet: true }),
    ).rejects.toThrow(/MD5 .* does not match/);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.existsSync(`${target}.part`)).toBe(false);
  });

  it('a server that stays down gives a one-line error after the retries, and no final file', async () => {
    mode = 'down';
    requests.length = 0;
    const target = path.join(tmpDir('dl-down'), 'file.bin');
    const err = await download(`${base}/file.bin`, target, md5, {
      retries: 2,
      backoffMs: 1,
      quiet: true,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(RobustError);
    expect(err.message).toMatch(/after 3 attempts/);
    expect(requests).toHaveLength(3);
    expect(fs.existsSync(target)).toBe(false);
  });
});
