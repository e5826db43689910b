/**
 * Library errors about options name them as the library spells them (`clipNorm`); the CLI says
 * the flag a user typed instead (`--clip-norm`). An option's flag is its name in kebab case
 * unless this table says otherwise.
 */
import type { RobustError } from '../util/errors.js';

const FLAGS: Record<string, string> = {
  preprocess: '--input-range, --mean and --std',
};

const kebab = (option: string) => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** `e`'s message as the CLI says it. */
export function cliMessage(e: RobustError): string {
  return e.words ? e.words((o) => FLAGS[o] ?? kebab(o)) : e.message;
}
