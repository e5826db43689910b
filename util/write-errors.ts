/** Turning a failed read or write into one line that names the file, for the errors a user can fix. */
import { RobustError } from './errors.js';

const WHY: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a folder',
  ENOTDIR: 'a component of the path is not a folder',
  EMFILE: 'too many open files',
  EFBIG: 'file too large for the file system',
  EBUSY: 'the target is in use (a mount point?)',
  ENOENT: 'a folder on the path does not exist',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  ENXIO: 'a socket or a device that is absent',
  EIO: 'input/output error',
};

/** `CODE: what it means` for an errno code (just the code when it has no description here). */
export const errnoText = (code: string) => (WHY[code] ? `${code}: ${WHY[code]}` : code);

/**
 * `e` as a RobustError naming `file` when the system refused the write (any errno code: the disk,
 * the path or the permissions, something a user can act on); else `e` unchanged (a bug).
 */
export function asWriteError(e: unknown, file: string): unknown {
  if (e instanceof RobustError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  return new RobustError(`${file}: cannot write (${errnoText(code)})`);
}
