/** Turning a failed write into one line that names the file, for the errors a user can fix. */
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
};

/** `e` as a RobustError naming `file` when it is an environment error a user can act on; else `e` unchanged. */
export function asWriteError(e: unknown, file: string): unknown {
  if (e instanceof RobustError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code && WHY[code] ? new RobustError(`${file}: cannot write (${code}: ${WHY[code]})`) : e;
}
