/**
 * Runs several `robust` command lines one after another in this one process, for tests about what
 * a command prints and returns rather than about the process: each spawned `robust` spends ~2 s of
 * CPU loading Node, TF.js and the CLI before it reads its arguments, so a file of 20 refusals spent
 * a minute of CPU starting up. Reads a JSON array of { args, env, watch } on stdin and writes a JSON
 * array of { code, stdout, stderr, ms, watched } on stdout; `code` is what bin/robust.js would exit
 * with, `watched` the state of each path in `watch` before and after the command (a file's SHA-256,
 * a folder's number of entries), so a test still sees that this command, not another one of the
 * batch, wrote nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

const { main } = await import(new URL('../../dist/cli/robust.js', import.meta.url).href);
const BIN = new URL('../../bin/robust.js', import.meta.url).pathname;
const runs = JSON.parse(fs.readFileSync(0, 'utf8'));
const realOut = process.stdout.write;
const realErr = process.stderr.write;
const results = [];
/** A stream's write(chunk[, encoding][, callback]) that keeps the text and calls back at once. */
const capture = (keep) => (chunk, encoding, callback) => {
  keep(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
  const done = typeof encoding === 'function' ? encoding : callback;
  if (done) process.nextTick(done);
  return true;
};
const state = (p) => {
  if (!fs.existsSync(p)) return 'missing';
  if (fs.statSync(p).isDirectory())
    return `${fs.readdirSync(p, { recursive: true }).length} entries`;
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
};
for (const { args, env = {}, watch = [] } of runs) {
  const before = watch.map(state);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  process.exitCode = undefined;
  let stdout = '';
  let stderr = '';
  // console.log and console.error write through these; a command's output goes nowhere else.
  process.stdout.write = capture((text) => (stdout += text));
  process.stderr.write = capture((text) => (stderr += text));
  const t0 = Date.now();
  let code;
  try {
    code = await main([process.execPath, BIN, ...args]);
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const ms = Date.now() - t0;
  results.push({ code, stdout, stderr, ms, watched: [before, watch.map(state)] });
}
process.exitCode = 0;
realOut.call(process.stdout, JSON.stringify(results), () => process.exit(0));
