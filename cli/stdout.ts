/**
 * Write errors on standard output. Node's console swallows them, so `robust models > /dev/full`
 * used to exit 0 having written nothing. EPIPE is the reader leaving (`robust … | head -1`): the
 * command ends quietly; any other error (ENOSPC, EIO) is an error like any other.
 */
import { errnoText } from '../util/write-errors.js';

let failure: NodeJS.ErrnoException | undefined;
let watching = false;

/** Keeps standard output's first write error (a listener of our own: without one, an EPIPE reported later would be an uncaught exception with its stack trace). */
export function watchStdout(): void {
  if (watching) return;
  watching = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => void (failure ??= e));
}

/**
 * Once a command is done: waits until what it wrote to standard output is written (a pipe reports
 * its errors asynchronously), then says how that went: nothing when all was written, an exit code
 * and maybe the one line to print.
 */
export async function stdoutOutcome(): Promise<{ code: number; message?: string } | undefined> {
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  const e = failure ?? (process.stdout.errored as NodeJS.ErrnoException | null) ?? undefined;
  if (!e) return undefined;
  // what a shell reports for a program that SIGPIPE ended (Node ignores the signal and gets EPIPE)
  if (e.code === 'EPIPE') return { code: 141 };
  return {
    code: 1,
    message: `cannot write to standard output: ${e.code ? errnoText(e.code) : e.message}`,
  };
}
