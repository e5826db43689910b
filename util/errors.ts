/**
 * The toolkit's own error type: a problem with the user's input or environment, reported by the
 * CLI as one line without a stack trace. Anything else that escapes is a bug.
 */
export class RobustError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RobustError';
  }
}

/** Throws a RobustError with `message` when `condition` is false. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new RobustError(typeof message === 'function' ? message() : message);
}
