// The browser side of the platform layer: the core bundles for browsers without a Node built-in,
// and util/platform-browser.ts gives what util/platform.ts gives.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import * as node from '../../util/platform.js';
import * as browser from '../../util/platform-browser.js';
import { bundleBrowser } from '../../scripts/build-browser.js';
import { ROOT, tmpDir } from '../helpers.js';

describe('browser bundle', () => {
  it('bundles browser.ts with the browser platform and no Node built-in', async () => {
    const b = await bundleBrowser(path.join(ROOT, 'browser.ts'));
    const own = b.inputs.filter((f) => !f.includes('node_modules'));
    expect(own).toContain('util/platform-browser.ts');
    expect(own).not.toContain('util/platform.ts');
    // the modules a page needs are in it
    for (const f of [
      'attacks/pgd.ts',
      'models/model-from-files.ts',
      'models/graph-model.ts',
      'eval/grid-core.ts',
      'eval/report-core.ts',
      'backend/browser.ts',
      'backend/wasm/wasm-kernels.ts',
    ])
      expect(own).toContain(f);
    expect(b.text!.length).toBeGreaterThan(1e6);
    expect(b.text).not.toMatch(/from\s*["']node:/);
  }, 60_000);

  it('fails naming the module when robust code imports a Node built-in', async () => {
    const dir = tmpDir('browser-entry');
    const entry = path.join(dir, 'entry.ts');
    fs.writeFileSync(
      entry,
      `export { writeFileAtomic } from ${JSON.stringify(path.join(ROOT, 'util', 'atomic.ts'))};\n`,
    );
    await expect(bundleBrowser(entry)).rejects.toThrow(/node:fs imported by .*util\/atomic\.ts/);
  }, 60_000);
});

describe('util/platform-browser.ts', () => {
  it('exports what util/platform.ts exports', () => {
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
    expect(browser.PLATFORM).toBe('browser');
  });

  it('hashes, encodes and decodes as Node does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), fc.string(), (bytes, text) => {
        expect(browser.sha256Hex(text, bytes)).toBe(node.sha256Hex(text, bytes));
        expect(browser.toBase64(bytes)).toBe(node.toBase64(bytes));
        expect(browser.fromBase64(node.toBase64(bytes))).toEqual(new Uint8Array(bytes));
      }),
      { numRuns: 60 },
    );
    expect(browser.sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('writes PNGs with the pixels Node writes', () => {
    const [w, h] = [7, 5];
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 37) % 256);
    for (const png of [browser.encodePng(w, h, rgba), node.encodePng(w, h, rgba)]) {
      const back = PNG.sync.read(Buffer.from(png));
      expect([back.width, back.height]).toEqual([w, h]);
      expect(new Uint8Array(back.data)).toEqual(rgba);
    }
  });

  it('yields to the event loop', async () => {
    let ran = false;
    setTimeout(() => (ran = true), 0);
    for (let i = 0; i < 50 && !ran; i++) await browser.yieldToEventLoop();
    await new Promise((r) => setTimeout(r, 5));
    expect(ran).toBe(true);
    expect(browser.envVar('PATH')).toBeUndefined();
  });
});
