/**
 * What every robust process pays at start: tfjs reaches robust's modules through #tfjs (a require
 * Node's CommonJS export scan cannot follow into tfjs's packages, ~0.8 s a start) and the report's
 * vega and vega-lite load with the first plot, not with the CLI (~1 s).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './helpers.js';

/** robust's own TypeScript sources (not tests, not the browser entry, which re-exports tfjs's namespace). */
function sources(dir = ROOT): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory())
      return ['node_modules', 'dist', 'test', '.git', '.scratch', 'zoo', 'web'].includes(e.name) ||
        e.name.startsWith('.')
        ? []
        : sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

it("robust's modules take tfjs from #tfjs, never by a value import of '@tensorflow/tfjs'", () => {
  const files = sources();
  expect(files.length).toBeGreaterThan(100);
  const direct = files.filter(
    (f) =>
      path.relative(ROOT, f) !== 'browser.ts' &&
      /^\s*(import|export)\s+(?!type\b)[^;]*from\s+'@tensorflow\/tfjs'/m.test(
        fs.readFileSync(f, 'utf8'),
      ),
  );
  expect(direct.map((f) => path.relative(ROOT, f))).toEqual([]);
});

it('#tfjs in Node: the whole tfjs namespace as a default export, with no named exports for Node to scan', () => {
  const script = `
    const m = await import('#tfjs');
    const tf = (await import('node:module')).createRequire(import.meta.url)('@tensorflow/tfjs');
    console.log(JSON.stringify({ keys: Object.keys(m), same: m.default === tf, conv: typeof m.default.conv2d }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ keys: ['default'], same: true, conv: 'function' });
});

it('robust --help loads neither vega nor vega-lite', () => {
  // a resolve hook that records every specifier robust's module graph asks for
  const hook = `data:text/javascript,${encodeURIComponent(
    `export async function resolve(s, c, next) { if (/^vega(-lite)?$/.test(s)) process.stderr.write('LOADED ' + s + '\\n'); return next(s, c); }`,
  )}`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(hook)});`;
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(register)}`, 'bin/robust.js', '--help'],
    { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toContain('Usage');
  expect(r.stderr).not.toContain('LOADED');
});
