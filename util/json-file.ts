/** Reading a JSON file the user pointed at: a missing or damaged file is a one-line RobustError. */
import { RobustError } from './errors.js';
import { readRegularFile } from './read-file.js';

/** The JSON files robust reads (configs, model topologies, results) are far below this. */
const MAX_JSON_BYTES = 64 * 2 ** 20;

/**
 * Parses `file`; `missing` is the message when it does not exist (it should say what was expected).
 * Only a regular file of at most `maxBytes` is read (see readRegularFile).
 */
export function readJsonFile<T = unknown>(
  file: string,
  missing: string,
  limits: { what?: string; maxBytes?: number } = {},
): T {
  const text = readRegularFile(file, {
    maxBytes: limits.maxBytes ?? MAX_JSON_BYTES,
    what: limits.what ?? 'JSON file',
    missing,
  }).toString('utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    // V8 quotes the text around the error, newlines included: keep the message on one line.
    throw new RobustError(`${file}: not valid JSON (${(e as Error).message.replace(/\s+/g, ' ')})`);
  }
}
