/**
 * JPEG decoding and resizing against Pillow's own outputs, stored in test/fixtures/pillow/ by
 * scripts/crosscheck/pillow_golden.py (Pillow 9.4, libjpeg-turbo 2.1.5): no Python at test time,
 * so these run on CI, which has no Pillow. Where Pillow is present, the script is also run and
 * checked against, and the stored files against what it makes.
 */
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../data/images.js';
import { resizeImages, rgbToGray } from '../../data/fit.js';
import type { ImageSet } from '../../data/dataset.js';
import { ROOT, tmpDir } from '../helpers.js';
import { hasPython, python } from './fixtures.js';

/** One output of Pillow's: its length and SHA-256, and its bytes in `file` when small. */
interface Output {
  bytes: number;
  sha256: string;
  file?: string;
}

interface Manifest {
  made_by: string;
  pillow: string;
  libjpeg_turbo: string;
  jpeg: {
    file: string;
    saved_with: Record<string, unknown>;
    width: number;
    height: number;
    mode: 'L' | 'RGB';
    pixels: Output;
  }[];
  resize: {
    input: string;
    count: number;
    height: number;
    width: number;
    channels: 1 | 3;
    to_height: number;
    to_width: number;
    content: string;
    resized: Output;
    gray?: Output;
  }[];
}

const STORED = path.join(ROOT, 'test', 'fixtures', 'pillow');
const SCRIPT = path.join(ROOT, 'scripts', 'crosscheck', 'pillow_golden.py');
const HAS_PIL = hasPython('PIL');

const readManifest = (dir: string): Manifest =>
  JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** '' when `ours` is Pillow's output, else how it differs (how many bytes, by how much, the first). */
function difference(dir: string, ours: Uint8Array, want: Output): string {
  if (ours.length !== want.bytes) return `${ours.length} bytes, Pillow's ${want.bytes}`;
  if (!want.file)
    return sha256(ours) === want.sha256 ? '' : `SHA-256 ${sha256(ours)}, Pillow's ${want.sha256}`;
  const ref = fs.readFileSync(path.join(dir, want.file));
  let count = 0;
  let most = 0;
  let first = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    if (d === 0) continue;
    count++;
    most = Math.max(most, d);
    if (first < 0) first = i;
  }
  return count === 0
    ? ''
    : `${count} of ${ref.length} bytes differ, by up to ${most}, the first at byte ${first}`;
}

/** Every JPEG of the folder decoded by us against Pillow's pixels: one line per case that differs. */
async function jpegFailures(dir: string): Promise<string[]> {
  const failures: string[] = [];
  for (const c of readManifest(dir).jpeg) {
    const ours = await decodeImage(fs.readFileSync(path.join(dir, c.file)), c.file);
    const shape = [ours.width, ours.height, ours.channels].join('×');
    const want = [c.width, c.height, c.mode === 'L' ? 1 : 3].join('×');
    const diff =
      shape === want ? difference(dir, ours.data, c.pixels) : `${shape}, Pillow's ${want}`;
    if (diff) failures.push(`${c.file} (${JSON.stringify(c.saved_with)}): ${diff}`);
  }
  return failures;
}

/** Every resize case: resizeImages against Image.resize(BILINEAR), rgbToGray against convert('L'). */
function resizeFailures(dir: string): string[] {
  const failures: string[] = [];
  for (const c of readManifest(dir).resize) {
    const set: ImageSet = {
      images: fs.readFileSync(path.join(dir, c.input)),
      labels: new Uint8Array(c.count),
      count: c.count,
      height: c.height,
      width: c.width,
      channels: c.channels,
    };
    const what = `${c.input}: ${c.count}× ${c.height}×${c.width}×${c.channels} (${c.content})`;
    const resized = difference(dir, resizeImages(set, c.to_height, c.to_width).images, c.resized);
    if (resized) failures.push(`${what} → ${c.to_height}×${c.to_width}: ${resized}`);
    if (c.gray) {
      const gray = difference(dir, rgbToGray(set).images, c.gray);
      if (gray) failures.push(`${what} → gray: ${gray}`);
    }
  }
  return failures;
}

describe("Pillow's outputs, stored (test/fixtures/pillow)", () => {
  it('the fixtures hold every variant the tests promise, and each stored output is the one the manifest hashed', () => {
    const m = readManifest(STORED);
    expect(m.made_by).toBe('scripts/crosscheck/pillow_golden.py');
    const jpeg = new Map(m.jpeg.map((c) => [c.file, c]));
    expect(jpeg.get('420.jpg')?.saved_with).toMatchObject({ subsampling: '4:2:0' });
    expect(jpeg.get('422.jpg')?.saved_with).toMatchObject({ subsampling: '4:2:2' });
    expect(jpeg.get('444.jpg')?.saved_with).toMatchObject({ subsampling: '4:4:4' });
    expect(jpeg.get('progressive.jpg')?.saved_with).toMatchObject({ progressive: true });
    expect(jpeg.get('gray.jpg')?.mode).toBe('L');
    expect(jpeg.get('exif-rotated.jpg')?.saved_with).toMatchObject({ exif: 'orientation 6' });
    expect(m.jpeg.length).toBeGreaterThanOrEqual(10);
    // the frame header says what the file is: progressive (SOF2) or baseline (SOF0), and its sampling factors
    const sof = (file: string) => {
      const b = fs.readFileSync(path.join(STORED, file));
      let at = 2; // marker segments after SOI: FF, type, 2-byte length counting itself
      while (at + 4 <= b.length && b[at] === 0xff && b[at + 1] !== 0xc0 && b[at + 1] !== 0xc2)
        at += 2 + b.readUInt16BE(at + 2);
      return { progressive: b[at + 1] === 0xc2, components: b[at + 9], lumaSampling: b[at + 11] };
    };
    expect(sof('420.jpg')).toEqual({ progressive: false, components: 3, lumaSampling: 0x22 });
    expect(sof('422.jpg')).toEqual({ progressive: false, components: 3, lumaSampling: 0x21 });
    expect(sof('444.jpg')).toEqual({ progressive: false, components: 3, lumaSampling: 0x11 });
    expect(sof('progressive.jpg')).toMatchObject({ progressive: true, components: 3 });
    expect(sof('gray.jpg')).toMatchObject({ components: 1 });
    const exif = fs.readFileSync(path.join(STORED, 'exif-rotated.jpg'));
    expect(exif.includes(Buffer.from('Exif\0\0'))).toBe(true);

    const shapes = m.resize;
    expect(shapes.length).toBeGreaterThanOrEqual(20);
    expect(shapes.some((c) => c.to_height > c.height && c.to_width > c.width)).toBe(true);
    expect(shapes.some((c) => c.to_height < c.height && c.to_width < c.width)).toBe(true);
    expect(
      shapes.some((c) => c.channels === 1) &&
        shapes.some((c) => c.channels === 3) &&
        shapes.some((c) => c.count > 1),
    ).toBe(true);

    const outputs = [
      ...m.jpeg.map((c) => c.pixels),
      ...shapes.flatMap((c) => (c.gray ? [c.resized, c.gray] : [c.resized])),
    ];
    const stored = outputs.filter((o) => o.file);
    expect(stored.length).toBeGreaterThan(outputs.length / 2);
    for (const o of stored)
      expect(sha256(fs.readFileSync(path.join(STORED, o.file!))), o.file).toBe(o.sha256);
    for (const c of shapes)
      expect(fs.statSync(path.join(STORED, c.input)).size, c.input).toBe(
        c.count * c.height * c.width * c.channels,
      );
  });

  it("JPEG pixels equal Pillow's, bit for bit (4:2:0, 4:2:2, 4:4:4, progressive, gray, optimized, quality 5 and 100, odd sizes; EXIF orientation not applied, as Pillow)", async () => {
    expect(await jpegFailures(STORED)).toEqual([]);
  });

  it("resizeImages equals Image.resize(BILINEAR) bit for bit, enlarging and shrinking, gray and RGB, image by image; rgbToGray equals convert('L')", () => {
    expect(resizeFailures(STORED)).toEqual([]);
  });
});

// The Pillow on this machine, where there is one (CI relies on the stored files above).
const LIVE_VERSION = HAS_PIL
  ? python(
      'import PIL; from PIL import features; print(PIL.__version__, features.version("libjpeg_turbo"))',
    )
      .toString()
      .trim()
  : '';
if (!HAS_PIL)
  console.warn('running the Pillow checks on the stored files only: /usr/bin/python3 has no PIL');

describe.skipIf(!HAS_PIL)(`Pillow on this machine (${LIVE_VERSION || 'absent'})`, () => {
  let live = '';
  beforeAll(() => {
    live = path.join(tmpDir('pillow-live'), 'pillow');
    execFileSync('/usr/bin/python3', [SCRIPT, live], { stdio: ['ignore', 'ignore', 'inherit'] });
  });

  it('our decoding and resizing equal what the script makes with it', async () => {
    expect(await jpegFailures(live)).toEqual([]);
    expect(resizeFailures(live)).toEqual([]);
  });

  const stored = readManifest(STORED);
  it.skipIf(LIVE_VERSION !== `${stored.pillow} ${stored.libjpeg_turbo}`)(
    'with the Pillow that made them, the script remakes the stored fixtures byte for byte (none edited by hand, none stale)',
    () => {
      const files = fs.readdirSync(STORED).sort();
      expect(fs.readdirSync(live).sort()).toEqual(files);
      for (const f of files)
        expect(
          fs.readFileSync(path.join(live, f)).equals(fs.readFileSync(path.join(STORED, f))),
          f,
        ).toBe(true);
    },
  );
});
