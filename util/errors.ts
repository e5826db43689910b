/**
 * The toolkit's own error type: a problem with the user's input or environment, reported by the
 * CLI as one line without a stack trace. Anything else that escapes is a bug.
 */
export class RobustError extends Error {
  /**
   * For a message about options: the message with each option named by `name`. The library names
   * them as its callers spell them (`clipNorm`); the CLI passes its flags (`--clip-norm`).
   */
  readonly words?: OptionWords;

  constructor(message: string, words?: OptionWords) {
    super(message);
    this.name = 'RobustError';
    this.words = words;
  }
}

/** Throws a RobustError with `message` when `condition` is false. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new RobustError(typeof message === 'function' ? message() : message);
}

/** A message about options, naming each through `name`: `(n) => `${n('eps')} must be ≥ 0``. */
export type OptionWords = (name: (option: string) => string) => string;

/** A RobustError about options, worded with the library's option names. */
export function optionError(words: OptionWords): RobustError {
  return new RobustError(
    words((o) => o),
    words,
  );
}

/** Throws an optionError when `condition` is false. */
export function checkOption(condition: unknown, words: OptionWords): asserts condition {
  if (!condition) throw optionError(words);
}

/**
 * Runs `fn`; an option error from it names options through `names` first, so a callee's option
 * is called what the caller's user typed (defenseConfig's `steps` is train()'s `advSteps`).
 */
export function renameOptions<T>(names: Record<string, string>, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const words = e instanceof RobustError ? e.words : undefined;
    if (words) throw optionError((n) => words((o) => n(names[o] ?? o)));
    throw e;
  }
}
