/**
 * CIFAR-10's test set from a file a page was given (a picked or dropped File; any Blob with a
 * name): the official `cifar-10-binary.tar.gz` (or the .tar inside it), or its `test_batch.bin`.
 * Checked as `robust data cifar10 --from` checks it: the archive's size cap, its MD5 against the
 * official one (one note says which it is), the tar refusals (data/tar-scan.ts), all six batches
 * present at their official size (10,000 records each), the test batch parsed as the CLI parses it — so the images and
 * their SHA-256 are the CLI's. Web APIs only (streams, DecompressionStream): runs in Node too.
 */
import { md5 } from '@noble/hashes/legacy.js';
import { RobustError } from '../util/errors.js';
import type { ImageSet } from './dataset.js';
import {
  BATCH_BYTES,
  CIFAR10_MD5,
  MAX_ARCHIVE_BYTES,
  TEST_FILE,
  TRAIN_FILES,
  checkBatchSize,
  parseCifarBatches,
} from './cifar10-records.js';
import { archiveOrigin } from './origin.js';
import { TarScan } from './tar-scan.js';

export interface NamedBlob {
  name: string;
  size: number;
  slice(start?: number, end?: number): Blob;
  stream(): ReadableStream<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** Unpacked-to-packed ratio beyond which the stream is a bomb, judged past 1 MiB (as data/archive.ts). */
const MAX_RATIO = 1000;
const RATIO_GRACE = 1 << 20;

async function md5OfBlob(file: NamedBlob): Promise<string> {
  const h = md5.create();
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    h.update(value);
  }
  return Array.from(h.digest(), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The archive's members as the tar scan found them (only the test batch's bytes are kept). */
async function scanArchive(file: NamedBlob): Promise<TarScan> {
  const scan = new TarScan({
    wanted: new Set([TEST_FILE]),
    seen: new Set(TRAIN_FILES),
    maxMemberBytes: BATCH_BYTES,
    memberWhat: 'CIFAR-10 batch',
    maxBytes: MAX_ARCHIVE_BYTES,
    what: 'CIFAR-10 archive',
  });
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  let packed = 0;
  const counted = file.stream().pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        packed += chunk.length;
        out.enqueue(chunk);
      },
    }),
  );
  const reader = (
    gzipped
      ? counted.pipeThrough(new DecompressionStream('gzip') as ReadableWritablePair<Uint8Array>)
      : counted
  ).getReader();
  let unpacked = 0;
  try {
    while (!scan.ended) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        throw new RobustError(`${file.name}: cannot read the archive (${(e as Error).message})`);
      }
      if (step.done) break;
      const chunk = step.value;
      const room = MAX_ARCHIVE_BYTES - unpacked;
      unpacked += Math.min(room, chunk.length);
      scan.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      if (scan.ended) break;
      if (chunk.length > room)
        throw new Error(
          `unpacks to more than ${MAX_ARCHIVE_BYTES >> 20} MiB without reaching its end-of-archive marker: larger than a CIFAR-10 archive`,
        );
      if (gzipped && unpacked > RATIO_GRACE && unpacked > MAX_RATIO * packed)
        throw new Error(
          `decompression ratio over ${MAX_RATIO}: a decompression bomb, not a CIFAR-10 archive`,
        );
    }
    scan.finish();
  } catch (e) {
    if (e instanceof RobustError) throw e;
    throw new RobustError(`${file.name}: refused: ${(e as Error).message}`);
  } finally {
    void reader.cancel().catch(() => undefined); // what follows the end marker is not read
  }
  return scan;
}

/** The test images of CIFAR-10 from `file` (see the top of this file); `note` gets one line on its origin. */
export async function cifar10TestFromFile(
  file: NamedBlob,
  note: (line: string) => void,
): Promise<ImageSet> {
  const name = file.name;
  if (/\.bin$/i.test(name)) {
    if (name !== TEST_FILE)
      throw new RobustError(
        `${name}: CIFAR-10's test images are ${TEST_FILE} (the other batches are its training images)`,
      );
    checkBatchSize(file.size, name); // before reading it
    const set = parseCifarBatches([new Uint8Array(await file.arrayBuffer())], name);
    note(
      `${name}: a batch file, not the official archive: its records were checked but their origin is not`,
    );
    return set;
  }
  if (!/\.(tar\.gz|tgz|tar)$/i.test(name))
    throw new RobustError(
      `${name}: pick cifar-10-binary.tar.gz (the official archive) or the ${TEST_FILE} inside it`,
    );
  if (file.size > MAX_ARCHIVE_BYTES)
    throw new RobustError(
      `${name}: ${file.size} bytes, more than a CIFAR-10 archive can be (${MAX_ARCHIVE_BYTES} at most)`,
    );
  const scan = await scanArchive(file);
  const missing = [...TRAIN_FILES, TEST_FILE].filter((f) => !scan.sizes.has(f));
  if (missing.length)
    throw new RobustError(`${name}: not a CIFAR-10 binary archive (missing ${missing.join(', ')})`);
  for (const f of TRAIN_FILES) checkBatchSize(scan.sizes.get(f)!, `${name}: ${f}`);
  const set = parseCifarBatches([scan.members.get(TEST_FILE)!], `${name}: ${TEST_FILE}`);
  note(archiveOrigin(name, await md5OfBlob(file), CIFAR10_MD5));
  return set;
}
