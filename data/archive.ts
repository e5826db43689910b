/**
 * Reading chosen members of a .tar.gz (or plain .tar) in memory, without extracting anything.
 * The unpacked stream is counted against a cap and reading stops at the tar end-of-archive marker:
 * node-tar keeps appending whatever follows that marker to one buffer (quadratic time, memory
 * as large as the stream), so a small archive padded with zeros would otherwise take minutes and GBs.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import * as tar from 'tar';
import { RobustError } from '../util/errors.js';
import { openRegularFile } from '../util/read-file.js';

export interface TarLimits {
  /** Base names of the members to keep; any folder prefix matches, so each may appear only once. */
  wanted: ReadonlySet<string>;
  /** Largest size of one wanted member, and what such a member is ("CIFAR-10 batch"). */
  maxMemberBytes: number;
  memberWhat: string;
  /** Largest archive file, and largest unpacked stream read before the end-of-archive marker. */
  maxBytes: number;
  /** What the archive should be, for messages ("CIFAR-10 archive"). */
  what: string;
  /** Also return the MD5 of the archive file (to compare with an official checksum). */
  md5?: boolean;
}

interface TarContents {
  members: Map<string, Uint8Array>;
  md5?: string;
}

/** Read and unpack in 1 MiB steps: fewer, larger chunks keep the per-chunk overhead small. */
const CHUNK = 1 << 20;
/** Unpacked-to-packed ratio beyond which the stream is treated as a bomb (node-tar's default). */
const MAX_RATIO = 1000;
/** The ratio is judged only past this many unpacked bytes: a tiny archive's header alone can exceed it. */
const RATIO_GRACE = 1 << 20;

/** Why an archive entry is refused: an absolute path, a `..` segment, or a link leading out. */
function unsafeEntry(entryPath: string, type: string, linkpath?: string): string | null {
  const bad = (p: string) =>
    p.startsWith('/') || /^[a-zA-Z]:/.test(p) || p.split(/[\\/]/).includes('..');
  if (bad(entryPath)) return `unsafe path '${entryPath}'`;
  if ((type === 'SymbolicLink' || type === 'Link') && linkpath !== undefined && bad(linkpath))
    return `link '${entryPath}' points outside the archive ('${linkpath}')`;
  return null;
}

const sizeText = (n: number) => (n >= 1 << 20 ? `${Math.round(n / (1 << 20))} MiB` : `${n} bytes`);

function md5OfOpenFile(fd: number, size: number): string {
  const hash = crypto.createHash('md5');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let at = 0; at < size;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash.digest('hex');
}

/**
 * The wanted members of the archive `file`. Refused in one line: unsafe paths (tar-slip), a wanted
 * name that appears twice, members or streams over the caps, truncated members, damaged headers.
 */
export async function readTarMembers(file: string, limits: TarLimits): Promise<TarContents> {
  const { fd, size } = openRegularFile(file, { maxBytes: limits.maxBytes, what: limits.what });
  try {
    const members = await readMembers(file, fd, limits);
    return { members, md5: limits.md5 ? md5OfOpenFile(fd, size) : undefined };
  } finally {
    fs.closeSync(fd);
  }
}

async function readMembers(
  file: string,
  fd: number,
  limits: TarLimits,
): Promise<Map<string, Uint8Array>> {
  const members = new Map<string, Uint8Array>();
  const seen = new Map<string, string>(); // wanted base name → the member path that gave it
  let problem: string | null = null;
  let declared = 0;
  const parser = new tar.Parser();
  let sawEof = false;
  let parserError: Error | null = null;
  parser.on('eof', () => (sawEof = true));
  parser.on('warn', (code: string, message: string) => {
    problem ??=
      code === 'TAR_BAD_ARCHIVE'
        ? `not a tar archive or a damaged one (${message})`
        : `damaged tar data (${message})`;
  });
  parser.on('error', (e: Error) => (parserError ??= e));
  parser.on('entry', (entry: tar.ReadEntry) => {
    const size = entry.size ?? 0;
    const base = path.posix.basename(entry.path);
    declared += size;
    problem ??= unsafeEntry(entry.path, entry.type, entry.linkpath);
    if (!problem && declared > limits.maxBytes)
      problem = `holds more than ${sizeText(limits.maxBytes)}: larger than a ${limits.what}`;
    if (!problem && limits.wanted.has(base)) {
      const before = seen.get(base);
      if (before !== undefined)
        problem = `two members map to ${base} ('${before}' and '${entry.path}'): which one is meant is ambiguous`;
      seen.set(base, entry.path);
      if (!problem && entry.type === 'File' && size > limits.maxMemberBytes)
        problem = `${entry.path} is ${size} bytes, more than a ${limits.memberWhat} (${limits.maxMemberBytes})`;
    }
    if (problem || entry.type !== 'File' || !limits.wanted.has(base)) {
      entry.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let got = 0;
    entry.on('data', (c: Buffer) => {
      got += c.length;
      chunks.push(c);
    });
    entry.on('end', () => {
      if (got !== size) problem ??= `${entry.path} is truncated (${got} of ${size} bytes)`;
      else members.set(base, Buffer.concat(chunks));
    });
  });

  const head = Buffer.alloc(2);
  const gzipped = fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  // The stream reads our fd but never closes it (a destroyed ReadStream closes its fd even with
  // autoClose off): the caller still hashes the file through it and closes it.
  const source = fs.createReadStream('', {
    fd,
    start: 0,
    autoClose: false,
    highWaterMark: CHUNK,
    fs: { read: fs.read, close: (_fd: number, cb: (e: null) => void) => cb(null) },
  });
  let packed = 0;
  source.on('data', (c) => (packed += c.length));
  const stream: Readable = gzipped ? source.pipe(zlib.createGunzip({ chunkSize: CHUNK })) : source;
  let unpacked = 0;
  // 'data' events, not for-await: an async iterator drops chunks already unpacked when the gzip
  // stream then fails on bytes after its end, which may lie after the tar end marker anyway.
  const stopped = new Promise<void>((resolve, reject) => {
    let settled = false;
    const stop = (e?: Error) => {
      if (settled) return;
      settled = true;
      if (e) reject(new RobustError(`${file}: cannot read the archive (${e.message})`));
      else resolve();
    };
    stream.on('data', (chunk: Buffer) => {
      if (settled) return;
      const room = limits.maxBytes - unpacked;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      unpacked += part.length;
      parser.write(part);
      // Whatever follows the end-of-archive marker is not part of the archive: stop reading.
      if (sawEof || problem || parserError) return stop();
      if (part.length < chunk.length)
        problem = `unpacks to more than ${sizeText(limits.maxBytes)} without reaching its end-of-archive marker: larger than a ${limits.what}`;
      else if (gzipped && unpacked > RATIO_GRACE && unpacked > MAX_RATIO * packed)
        problem = `decompression ratio over ${MAX_RATIO}: a decompression bomb, not a ${limits.what}`;
      if (problem) stop();
    });
    stream.on('end', () => stop());
    stream.on('error', stop);
    source.on('error', stop);
  });
  try {
    await stopped;
  } finally {
    stream.destroy();
    source.destroy();
    // The fd is closed by the caller: wait until no read on it is in flight.
    if (!source.closed) await once(source, 'close');
  }
  // Every tar writer ends with the marker: a stream that stops before it was cut short.
  if (!sawEof) problem ??= 'no end-of-archive marker: truncated, damaged or not a tar archive';
  if (!problem && !parserError) {
    await new Promise<void>((resolve) => {
      parser.on('end', () => resolve());
      parser.end();
    });
  }
  if (parserError)
    throw new RobustError(`${file}: cannot read the archive (${(parserError as Error).message})`);
  if (problem) throw new RobustError(`${file}: refused: ${problem}`);
  return members;
}
