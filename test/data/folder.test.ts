/** folder:PATH — layouts, ImageFolder's order, PNG/JPEG decoding, and hostile folders. */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadFolder } from '../../data/folder-node.js';
import { decodeImage } from '../../data/images.js';
import { loadData } from '../../data/index.js';
import { withClassCount } from '../../data/dataset.js';
import { RobustError } from '../../util/errors.js';
import { missing, tmpDir } from '../helpers.js';
import { hasPython, jpegFile, pattern, png, python, rawPng, write } from './fixtures.js';

// The ImageFolder order is computed by Python's standard library: /usr/bin/python3 is on CI (.ci/run installs python3-numpy)
const HAS_PYTHON = hasPython('os');
if (missing(HAS_PYTHON))
  console.warn('skipping the ImageFolder order cross-check: no /usr/bin/python3');

/** Writes files under `root`: path → contents (a string is written as is; folders are made). */
function tree(root: string, files: Record<string, Uint8Array | string>): string {
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  return root;
}

const rgb = (seed: number, w = 4, h = 3) => png(w, h, 3, pattern(w * h * 3, seed));
const gray = (seed: number, w = 4, h = 3) => png(w, h, 1, pattern(w * h, seed));

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RobustError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('class folders (torchvision ImageFolder)', () => {
  it('classes in byte order of their names, labels their index, images by sorted folder path then name, sub-folders included', async () => {
    const root = tree(tmpDir('folder-classes'), {
      'b/2.png': rgb(1),
      'b/10.png': rgb(2),
      'B/x.png': rgb(3),
      'a_b/z.png': rgb(4),
      'a/sub/1.png': rgb(5),
      'a/0.png': rgb(6),
      'a/sub-2/0.png': rgb(7),
      'ä/k.png': rgb(8),
      'a/.hidden.png': 'not read',
      'a/.cache/x.png': 'not read',
      'a/notes.txt': 'ignored',
      '.ipynb_checkpoints/x.png': 'not a class',
      'README.md': 'ignored',
    });
    const s = await loadFolder(root);
    expect(s.name).toBe(`folder:${root}`);
    expect(s.classes).toEqual(['B', 'a', 'a_b', 'b', 'ä']);
    expect(s.classesFrom).toBeUndefined();
    expect(Array.from(s.test.labels)).toEqual([0, 1, 1, 1, 2, 3, 3, 4]);
    // a/0.png, then a/sub/ before a/sub-2/ (folder paths sort as strings: a prefix first), b/10.png before b/2.png
    const seeds = [3, 6, 5, 7, 4, 2, 1, 8];
    const per = 4 * 3 * 3;
    seeds.forEach((seed, i) =>
      expect(
        Buffer.from(s.test.images.subarray(i * per, (i + 1) * per)).equals(
          Buffer.from(pattern(per, seed)),
        ),
        `image ${i}`,
      ).toBe(true),
    );
    expect(s.train.count).toBe(0);
    expect(s.mean).toHaveLength(3);
  });

  it.skipIf(missing(HAS_PYTHON))(
    "the order of files and classes is that of torchvision's rule, computed by Python (sorted os.walk, followlinks)",
    async () => {
      const names = ['Zeta', 'alpha', 'Alpha', 'é', 'e', 'a b', 'a-b', 'a.b', '_x', '1', '10', '9'];
      const files: Record<string, Uint8Array> = {};
      names.forEach((n, i) => {
        files[`${n}/${names[(i + 3) % names.length]}.png`] = rgb(i);
        files[`${n}/${n}/${i}.png`] = rgb(i + 20);
        files[`${n}/${n}-x/${i}.png`] = rgb(i + 40);
      });
      const root = tree(tmpDir('folder-order'), files);
      // torchvision's rule (find_classes + make_dataset), written out in Python
      const ref = JSON.parse(
        python(`
import os, json, sys
root = ${JSON.stringify(root)}
classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
out = []
for c in classes:
    for r, _, fs in sorted(os.walk(os.path.join(root, c), followlinks=True)):
        for f in sorted(fs):
            out.append([os.path.join(r, f), classes.index(c)])
print(json.dumps([classes, out]))
`).toString(),
      );
      const s = await loadFolder(root);
      expect(s.classes).toEqual(ref[0]);
      expect(Array.from(s.test.labels)).toEqual(ref[1].map((r: [string, number]) => r[1]));
    },
  );

  it('train/ and test/ are the splits, sharing the training classes; a test split may lack a class; val/ when there is no test/', async () => {
    const root = tree(tmpDir('folder-splits'), {
      'train/cat/1.png': rgb(1),
      'train/dog/1.png': rgb(2),
      'train/emu/1.png': rgb(3),
      'test/dog/1.png': rgb(4),
      'test/emu/1.png': rgb(5),
      'val/cat/1.png': rgb(6),
    });
    const notes: string[] = [];
    const s = await loadFolder(root, { note: (l) => notes.push(l) });
    expect(s.classes).toEqual(['cat', 'dog', 'emu']);
    expect([s.train.count, s.test.count]).toEqual([3, 2]);
    expect(Array.from(s.test.labels)).toEqual([1, 2]);
    expect(notes).toEqual([`${root}: test/ is the test split (val/ is not used)`]);
    fs.rmSync(path.join(root, 'test'), { recursive: true });
    const v = await loadFolder(root);
    expect(Array.from(v.test.labels)).toEqual([0]);
    tree(root, { 'val/fox/1.png': rgb(7) });
    expect(await refusal(loadFolder(root))).toBe(
      `${path.join(root, 'val', 'fox')}: class 'fox' is not a class of the class folders of ${path.join(root, 'train')}`,
    );
  });

  it('a Kaggle layout: class folders for training, a flat unlabeled test folder', async () => {
    const root = tree(tmpDir('folder-kaggle'), {
      'train/a/1.png': rgb(1),
      'train/b/1.png': rgb(2),
      'test/0001.png': rgb(3),
      'test/0002.png': rgb(4),
    });
    await expect(loadData(`folder:${root}`)).rejects.toThrow(
      /has no labels for its test images \(no class folders and no labels\.csv\)/,
    );
    const s = await loadData(`folder:${root}`, { allowUnlabeled: true });
    expect(s.unlabeled).toBe(true);
    expect(s.classes).toEqual(['a', 'b']);
    expect(s.test.count).toBe(2);
  });

  it('a flat folder without labels: unlabeled, and its classes are whatever the model has', async () => {
    const root = tree(tmpDir('folder-unlabeled'), { '2.png': rgb(2), '10.png': rgb(10) });
    const s = await loadData(`folder:${root}`, { allowUnlabeled: true });
    expect([s.unlabeled, s.classesFrom, s.classes]).toEqual([true, 'labels', []]);
    expect(withClassCount(s, 10).classes).toHaveLength(10);
    expect(Buffer.from(s.test.images.subarray(0, 36)).equals(Buffer.from(pattern(36, 10)))).toBe(
      true,
    ); // '10.png' < '2.png'
  });

  it('--limit decodes only the first N images of each split (a broken file after them is not read)', async () => {
    const root = tree(tmpDir('folder-limit'), {
      'a/1.png': rgb(1),
      'a/2.png': rgb(2),
      'b/3.png': 'broken',
    });
    const s = await loadFolder(root, { limit: 2 });
    expect(s.test.count).toBe(2);
    expect(await refusal(loadFolder(root))).toMatch(/b\/3\.png: neither a PNG nor a JPEG file/);
  });
});

describe('a flat folder with labels.csv', () => {
  it('names as labels: classes their sorted set, images in the order of the rows', async () => {
    const root = tree(tmpDir('folder-csv'), {
      'x.png': gray(1),
      'y.png': gray(2),
      'z.png': gray(3),
      'labels.csv': '\uFEFFfile,label\r\nz.png,zebra\r\nx.png,ant\r\ny.png,"zebra"\r\n',
    });
    const s = await loadFolder(root);
    expect(s.classes).toEqual(['ant', 'zebra']);
    expect(Array.from(s.test.labels)).toEqual([1, 0, 1]);
    expect(s.test.channels).toBe(1);
    expect(Buffer.from(s.test.images.subarray(0, 12)).equals(Buffer.from(pattern(12, 3)))).toBe(
      true,
    );
  });

  it('indices as labels: names from classes.txt, or "0".."k-1" flagged as label indices', async () => {
    const root = tree(tmpDir('folder-csv-idx'), {
      'x.png': gray(1),
      'y.png': gray(2),
      'labels.csv': 'file,label\nx.png,2\ny.png,0\n',
    });
    const s = await loadFolder(root);
    expect(s.classes).toEqual(['0', '1', '2']);
    expect(s.classesFrom).toBe('labels');
    tree(root, { 'classes.txt': 'cat\ndog\nemu\nfox\n' });
    const t = await loadFolder(root);
    expect(t.classes).toEqual(['cat', 'dog', 'emu', 'fox']);
    expect(t.classesFrom).toBeUndefined();
    expect(Array.from(t.test.labels)).toEqual([2, 0]);
  });

  const bad: [string, Record<string, Uint8Array | string>, RegExp][] = [
    [
      'a wrong header',
      { 'x.png': gray(1), 'labels.csv': 'filename,class\nx.png,a\n' },
      /labels\.csv: the first row must be the header file,label \(found filename,class\)/,
    ],
    [
      'an image without a row',
      { 'x.png': gray(1), 'y.png': gray(2), 'labels.csv': 'file,label\nx.png,a\n' },
      /y\.png: has no row in .*labels\.csv/,
    ],
    [
      'a row without an image',
      { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,a\nq.png,b\n' },
      /labels\.csv line 3: .*q\.png does not exist/,
    ],
    [
      'a row listed twice',
      { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,a\nx.png,b\n' },
      /labels\.csv line 3: x\.png is listed twice/,
    ],
    [
      'a path in a row',
      { 'x.png': gray(1), 'labels.csv': 'file,label\n../x.png,a\n' },
      /line 2: '\.\.\/x\.png' is not a file name in/,
    ],
    [
      'three columns',
      { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,a,b\n' },
      /labels\.csv: not a readable CSV/,
    ],
    // one stray name would make every index a name, sorted: '' and '-1' before '0' shift all labels by one
    [
      'an empty label',
      { 'x.png': gray(1), 'y.png': gray(2), 'labels.csv': 'file,label\nx.png,0\ny.png,\n' },
      /labels\.csv: line 3 has no label/,
    ],
    [
      'indices mixed with a name',
      { 'x.png': gray(1), 'y.png': gray(2), 'labels.csv': 'file,label\nx.png,0\ny.png,-1\n' },
      /labels mix class indices \('0', .*line 2\) and names \('-1', line 3\)/,
    ],
    [
      'a label not in classes.txt',
      { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,wolf\n', 'classes.txt': 'cat\ndog\n' },
      /line 2: label 'wolf' is not a class of classes\.txt/,
    ],
    [
      'an index past classes.txt',
      { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,2\n', 'classes.txt': 'cat\ndog\n' },
      /line 2: label '2' is not below the 2 classes of classes\.txt/,
    ],
    [
      'a class twice in classes.txt',
      {
        'x.png': gray(1),
        'labels.csv': 'file,label\nx.png,cat\n',
        'classes.txt': 'cat\ndog\ncat\n',
      },
      /classes\.txt: class 'cat' is listed twice/,
    ],
  ];
  for (const [what, files, message] of bad) {
    it(`refused: ${what}`, async () => {
      const root = tree(tmpDir('folder-csv-bad'), files);
      expect(await refusal(loadFolder(root))).toMatch(message);
    });
  }
});

describe('decoding: PNG and JPEG, gray and RGB', () => {
  it('RGBA with every pixel opaque becomes RGB; palette, 16-bit and 2-bit PNGs decode; the format comes from the bytes, not the name', async () => {
    const rgba = Uint8Array.from({ length: 2 * 2 * 4 }, (_, i) => (i % 4 === 3 ? 255 : i * 9));
    const a = await decodeImage(png(2, 2, 4, rgba), 'a.png');
    expect([a.channels, ...a.data]).toEqual([3, 0, 9, 18, 36, 45, 54, 72, 81, 90, 108, 117, 126]);
    const palette = rawPng({
      width: 3,
      height: 1,
      colorType: 3,
      depth: 8,
      rows: Uint8Array.from([2, 0, 1]),
      chunks: [['PLTE', Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90])]],
    });
    expect(Array.from((await decodeImage(palette, 'p.png')).data)).toEqual([
      70, 80, 90, 10, 20, 30, 40, 50, 60,
    ]);
    const sixteen = rawPng({
      width: 2,
      height: 1,
      colorType: 0,
      depth: 16,
      rows: Uint8Array.from([0xff, 0xff, 0x80, 0x00]),
    });
    const g16 = await decodeImage(sixteen, 'g16.png');
    expect([g16.channels, ...g16.data]).toEqual([1, 255, 128]); // round(v·255/65535)
    const two = rawPng({
      width: 4,
      height: 1,
      colorType: 0,
      depth: 2,
      rows: Uint8Array.from([0b00011011]),
    });
    expect(Array.from((await decodeImage(two, 'g2.png')).data)).toEqual([0, 85, 170, 255]);
    const j = await decodeImage(jpegFile(8, 8, pattern(8 * 8 * 3, 1)), 'really-a-jpeg.png');
    expect([j.width, j.height, j.channels]).toEqual([8, 8, 3]);
  });
  // JPEG pixels against Pillow's, bit for bit (4:2:0, 4:2:2, 4:4:4, progressive, gray, EXIF-rotated…): test/data/pillow.test.ts
});

describe('refused in one line naming the file', () => {
  const jpg = jpegFile(16, 16, pattern(16 * 16 * 3, 2));
  const cases: [string, Record<string, Uint8Array | string>, RegExp][] = [
    [
      'a truncated PNG',
      { 'a/1.png': rgb(1), 'a/2.png': rgb(2).subarray(0, 60) },
      /a\/2\.png: not a readable PNG/,
    ],
    [
      'a truncated JPEG',
      { 'a/1.jpg': jpg, 'a/2.jpg': jpg.subarray(0, Math.floor(jpg.length * 0.6)) },
      /a\/2\.jpg: (damaged or truncated JPEG|not a readable JPEG)/,
    ],
    [
      'a JPEG cut inside its header',
      { 'a/1.jpg': jpg.subarray(0, 40) },
      /a\/1\.jpg: damaged or truncated JPEG \(no frame header\)/,
    ],
    [
      'a PNG with a wrong signature',
      { 'a/1.png': Buffer.concat([Buffer.from('\x89PNX'), rgb(1).subarray(4)]) },
      /a\/1\.png: neither a PNG nor a JPEG file/,
    ],
    ['a text file named .jpg', { 'a/1.jpg': 'hello' }, /a\/1\.jpg: neither a PNG nor a JPEG file/],
    [
      'an empty image file',
      { 'a/1.png': '' },
      /a\/1\.png: neither a PNG nor a JPEG file \(empty\)/,
    ],
    [
      'a PNG with a flipped data byte (CRC)',
      {
        'a/1.png': (() => {
          const b = Buffer.from(rgb(1));
          b[b.length - 20] ^= 0xff;
          return b;
        })(),
      },
      /a\/1\.png: not a readable PNG/,
    ],
    [
      'mixed image sizes',
      { 'a/1.png': rgb(1), 'b/1.png': rgb(2, 5, 3) },
      /b\/1\.png: 5×3 RGB, but .*a\/1\.png is 4×3 RGB: all images must have one size and channel count/,
    ],
    [
      'gray among RGB images',
      { 'a/1.png': rgb(1), 'a/2.png': gray(2) },
      /a\/2\.png: 4×3 gray, but .*a\/1\.png is 4×3 RGB/,
    ],
    [
      'transparent pixels',
      { 'a/1.png': png(2, 1, 4, Uint8Array.from([1, 2, 3, 255, 4, 5, 6, 128])) },
      /a\/1\.png: has transparent pixels \(alpha 128 at x 1, y 0\)/,
    ],
    [
      'a tRNS colour key',
      {
        'a/1.png': rawPng({
          width: 2,
          height: 1,
          colorType: 0,
          depth: 8,
          rows: Uint8Array.from([7, 9]),
          chunks: [['tRNS', Uint8Array.from([0, 9])]],
        }),
      },
      /has transparent pixels \(alpha 0 at x 1/,
    ],
    [
      'a CMYK-like 4-component JPEG',
      {
        'a/1.jpg': (() => {
          const b = Buffer.from(jpg);
          const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
          b[sof + 9] = 4;
          return b;
        })(),
      },
      /a\/1\.jpg: a JPEG with 4 colour components \(CMYK\)/,
    ],
    [
      'a 12-bit JPEG',
      {
        'a/1.jpg': (() => {
          const b = Buffer.from(jpg);
          const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
          b[sof + 4] = 12;
          return b;
        })(),
      },
      /a 12-bit JPEG/,
    ],
    [
      'a PNG header claiming 100000×100000 pixels',
      {
        'a/1.png': (() => {
          const b = Buffer.from(rgb(1));
          b.writeUInt32BE(100_000, 16);
          b.writeUInt32BE(100_000, 20);
          return b;
        })(),
      },
      /a\/1\.png: 100000×100000 pixels, more than robust reads \(67108864 per image\)/,
    ],
    [
      'a JPEG header claiming 65535×65535 pixels',
      {
        'a/1.jpg': (() => {
          const b = Buffer.from(jpg);
          const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
          b.writeUInt16BE(65535, sof + 5);
          b.writeUInt16BE(65535, sof + 7);
          return b;
        })(),
      },
      /a\/1\.jpg: 65535×65535 pixels, more than robust reads/,
    ],
    [
      'a 2×2 PNG whose data inflates to 64 MB',
      {
        'a/1.png': rawPng({
          width: 2,
          height: 2,
          colorType: 0,
          depth: 8,
          rows: new Uint8Array(4),
          idat: zlib.deflateSync(new Uint8Array(64 << 20)),
        }),
      },
      /a\/1\.png: not a readable PNG/,
    ],
    [
      'an interlaced 2×2 PNG whose data inflates to 64 MB',
      {
        'a/1.png': rawPng({
          width: 2,
          height: 2,
          colorType: 0,
          depth: 8,
          rows: new Uint8Array(4),
          interlace: true,
          idat: zlib.deflateSync(new Uint8Array(64 << 20)),
        }),
      },
      /a\/1\.png: its pixel data inflates to more than 2×2 pixels need/,
    ],
    [
      'a BMP file',
      { 'a/1.png': rgb(1), 'a/2.bmp': 'BM' },
      /a\/2\.bmp: robust reads PNG and JPEG images only/,
    ],
    [
      'an image beside class folders',
      { 'a/1.png': rgb(1), 'stray.png': rgb(2) },
      /stray\.png: an image beside the class folders of .*: put every image in its class folder/,
    ],
    [
      'a class folder with no images',
      { 'a/1.png': rgb(1), 'b/readme.txt': 'x', 'b/.x.png': rgb(2) },
      /\/b: a class folder with no images/,
    ],
    [
      'class folders and labels.csv',
      { 'a/1.png': rgb(1), 'labels.csv': 'file,label\n' },
      /has both class folders and labels\.csv/,
    ],
  ];
  for (const [what, files, message] of cases) {
    it(what, async () => {
      const root = tree(tmpDir('folder-bad'), files);
      const m = await refusal(loadFolder(root));
      expect(m.startsWith(root)).toBe(true);
      expect(m).toMatch(message);
    });
  }

  it('more classes than byte labels hold (257 class folders, an index label of 300)', async () => {
    const root = tmpDir('folder-classes-cap');
    for (let c = 0; c < 257; c++) fs.mkdirSync(path.join(root, `c${c}`));
    expect(await refusal(loadFolder(root))).toBe(
      `${root}: 257 classes, more than robust handles (256: labels are stored as bytes)`,
    );
    const flat = tree(tmpDir('folder-index-cap'), {
      'x.png': gray(1),
      'labels.csv': 'file,label\nx.png,300\n',
    });
    expect(await refusal(loadFolder(flat))).toBe(
      `${flat}: 301 classes, more than robust handles (256: labels are stored as bytes)`,
    );
  });

  it('a class name with a control character, from a folder name, classes.txt or labels.csv, shown escaped', async () => {
    const esc = '\u001b[2Jred';
    const shown = '"\\u001b[2Jred"';
    const why = 'holds a control character: rename it (class names are printed and put in reports)';
    const folders = tree(tmpDir('folder-control'), {
      [`${esc}/x.png`]: gray(1),
      'b/y.png': gray(2),
    });
    const m = await refusal(loadFolder(folders));
    expect(m).toBe(`${folders}: class name ${shown} ${why}`);
    expect(m).not.toMatch(/[\u0000-\u001f]/); // eslint-disable-line no-control-regex
    const txt = tree(tmpDir('folder-control-txt'), {
      'a/x.png': gray(1),
      'b/y.png': gray(2),
      'classes.txt': `a\nb\tc\u0085\n`,
    });
    expect(await refusal(loadFolder(txt))).toBe(
      `${path.join(txt, 'classes.txt')}: line 2: class name "b\\u0009c\\u0085" ${why}`,
    );
    const csv = tree(tmpDir('folder-control-csv'), {
      'x.png': gray(1),
      'y.png': gray(2),
      'labels.csv': `file,label\nx.png,cat\ny.png,"d\u007fog"\n`,
    });
    expect(await refusal(loadFolder(csv))).toBe(
      `${path.join(csv, 'labels.csv')}: line 3: class name "d\\u007fog" ${why}`,
    );
    // printable names beyond ASCII are names like any other
    const fine = tree(tmpDir('folder-control-fine'), { 'ä/x.png': gray(1), '猫/y.png': gray(2) });
    expect((await loadFolder(fine)).classes).toEqual(['ä', '猫']);
  });

  it('an empty folder, a missing one, a file', async () => {
    const root = tmpDir('folder-empty');
    expect(await refusal(loadFolder(root))).toBe(
      `${root}: no images (.png, .jpg, .jpeg) and no class folders`,
    );
    fs.mkdirSync(path.join(root, '.git'));
    expect(await refusal(loadFolder(root))).toBe(
      `${root}: no images (.png, .jpg, .jpeg) and no class folders`,
    );
    expect(await refusal(loadFolder(path.join(root, 'nope')))).toBe(
      `${path.join(root, 'nope')}: no such folder`,
    );
    const f = write(path.join(root, 'x.png'), rgb(1));
    expect(await refusal(loadFolder(f))).toBe(
      `${f}: not a folder (folder:PATH takes a folder of images)`,
    );
  });

  it('a symbolic link loop inside a class folder; a dangling link to an image', async () => {
    const root = tree(tmpDir('folder-loop'), { 'a/1.png': rgb(1), 'b/1.png': rgb(2) });
    fs.symlinkSync('..', path.join(root, 'a', 'up')); // a/up → the root, which holds a/ again
    expect(await refusal(loadFolder(root))).toMatch(
      /a\/up\/a: a symbolic link loop \(it is .*\/a, a folder above it\)/,
    );
    fs.rmSync(path.join(root, 'a', 'up'));
    fs.symlinkSync('.', path.join(root, 'b', 'self'));
    expect(await refusal(loadFolder(root))).toMatch(/b\/self: a symbolic link loop/);
    fs.rmSync(path.join(root, 'b', 'self'));
    fs.symlinkSync(path.join(root, 'gone.png'), path.join(root, 'b', 'x.png'));
    expect(await refusal(loadFolder(root))).toBe(
      `${path.join(root, 'b', 'x.png')}: cannot read (a dangling symbolic link)`,
    );
    fs.rmSync(path.join(root, 'b', 'x.png'));
    fs.symlinkSync(path.join(root, 'loop1'), path.join(root, 'loop2'));
    fs.symlinkSync(path.join(root, 'loop2'), path.join(root, 'loop1'));
    expect((await loadFolder(root)).test.count).toBe(2); // links that lead nowhere, named like no image: skipped
  });

  it('a FIFO named like an image is refused, not waited on', async () => {
    const root = tree(tmpDir('folder-fifo'), { 'a/1.png': rgb(1) });
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(root, 'a', '2.png')]);
    expect(await refusal(loadFolder(root))).toMatch(
      /a\/2\.png: is a FIFO \(named pipe\); a PNG\/JPEG file must be a regular file/,
    );
  });
});
