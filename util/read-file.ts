/**
 * Reading a file the user pointed at: regular files only, and only up to a cap. stat() reports
 * size 0 for devices and FIFOs, so a link to /dev/zero would otherwise be read until memory runs
 * out, and a FIFO opened the usual way blocks until some writer appears.
 */
import fs from 'node:fs';
import { RobustError } from './errors.js';
import { errnoText } from './write-errors.js';

interface ReadLimits {
  /** Largest size accepted, in bytes. */
  maxBytes: number;
  /** What the file should be, for messages ("weight shard", "CIFAR-10 batch"). */
  what: string;
  /** The message when the file does not exist (default "<file>: no such file"). */
  missing?: string;
}

function kind(s: fs.Stats): string {
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

function check(file: string, s: fs.Stats, limits: ReadLimits): void {
  if (!s.isFile())
    throw new RobustError(`${file}: is ${kind(s)}; a ${limits.what} must be a regular file`);
  if (s.size > limits.maxBytes)
    throw new RobustError(
      `${file}: ${s.size} bytes, more than a ${limits.what} can be (${limits.maxBytes} at most)`,
    );
}

function openError(e: unknown, file: string, limits: ReadLimits): RobustError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new RobustError(limits.missing ?? `${file}: no such file`);
  return new RobustError(`${file}: cannot open (${code ? errnoText(code) : (e as Error).message})`);
}

/**
 * Opens `file` for reading; the caller closes the descriptor. The path is stat()ed first (so a
 * device is never opened at all), opened non-blocking (so a FIFO swapped in meanwhile cannot
 * block), and the open descriptor is fstat()ed again: what is read is what was checked.
 */
export function openRegularFile(file: string, limits: ReadLimits): { fd: number; size: number } {
  try {
    check(file, fs.statSync(file), limits);
  } catch (e) {
    throw e instanceof RobustError ? e : openError(e, file, limits);
  }
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw openError(e, file, limits);
  }
  try {
    const s = fs.fstatSync(fd);
    check(file, s, limits);
    return { fd, size: s.size };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** The bytes of `file`, refused in one line unless it is a regular file of at most `limits.maxBytes`. */
export function readRegularFile(file: string, limits: ReadLimits): Buffer {
  const { fd, size } = openRegularFile(file, limits);
  try {
    const buf = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const got = fs.readSync(fd, buf, n, size - n, n);
      if (got === 0) break; // the file shrank meanwhile: return what is there
      n += got;
    }
    return n === size ? buf : buf.subarray(0, n);
  } catch (e) {
    throw new RobustError(
      `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  } finally {
    fs.closeSync(fd);
  }
}
