/** Reading a JSON file the user pointed at: a missing or damaged file is a one-line RobustError. */
import fs from 'node:fs';
import { RobustError } from './errors.js';

/** Parses `file`; `missing` is the message when it does not exist (it should say what was expected). */
export function readJsonFile<T = unknown>(file: string, missing: string): T {
  if (!fs.existsSync(file)) throw new RobustError(missing);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    // V8 quotes the text around the error, newlines included: keep the message on one line.
    throw new RobustError(`${file}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
}
