// The folder rules read through the files a page is given (data/folder-files.ts) give what they
// give on disk (data/folder-node.ts): the same images, labels and classes, the same refusals with
// the picked folder's name where the CLI names its absolute path.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFolder } from '../../data/folder-node.js';
import {
  filesFolderSource,
  folderFilesFromEntry,
  loadFolderFiles,
  type DirectoryEntryLike,
  type EntryLike,
  type FolderFile,
} from '../../data/folder-files.js';
import { RobustError } from '../../util/errors.js';
import { tmpDir } from '../helpers.js';
import { jpegFile, pattern, png } from './fixtures.js';

function tree(files: Record<string, Uint8Array | string>): string {
  const root = tmpDir('folder-files');
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  return root;
}

/** The files under `root` as <input webkitdirectory> gives them: every file, paths from the folder's name. */
function picked(root: string): FolderFile[] {
  return (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((rel) => fs.statSync(path.join(root, rel)).isFile())
    .map((rel) => ({
      path: `${path.basename(root)}/${rel}`,
      file: new Blob([fs.readFileSync(path.join(root, rel))]),
    }));
}

async function outcome(p: Promise<{ test: unknown; train: unknown; classes: unknown }>) {
  try {
    const s = await p;
    return { ok: { test: s.test, train: s.train, classes: s.classes } };
  } catch (e) {
    expect(e).toBeInstanceOf(RobustError);
    return { error: (e as Error).message };
  }
}

const rgb = (seed: number, w = 4, h = 3) => png(w, h, 3, pattern(w * h * 3, seed));
const gray = (seed: number) => png(4, 3, 1, pattern(12, seed));

/** name, files, and the refusal expected (none: loaded). */
const TREES: [string, Record<string, Uint8Array | string>, RegExp?][] = [
  [
    'class folders, sub-folders, hidden and other files',
    {
      'b/2.png': rgb(1),
      'b/10.png': rgb(2),
      'B/x.png': rgb(3),
      'a/sub/1.png': rgb(5),
      'a/0.jpg': jpegFile(4, 3, pattern(36, 6)),
      'ä/k.png': rgb(8),
      'a/.hidden.png': 'not read',
      'a/notes.txt': 'ignored',
      '.git/x.png': 'not a class',
    },
  ],
  [
    'train/ and test/ with classes.txt',
    {
      'train/cat/1.png': rgb(1),
      'train/dog/1.png': rgb(2),
      'test/dog/1.png': rgb(4),
      'classes.txt': 'cat\ndog\nemu\n',
    },
  ],
  [
    'labels.csv with names',
    { 'x.png': gray(1), 'y.png': gray(2), 'labels.csv': 'file,label\ny.png,zebra\nx.png,ant\n' },
  ],
  [
    'a row without an image',
    { 'x.png': gray(1), 'labels.csv': 'file,label\nx.png,a\nq.png,b\n' },
    /line 3: .*q\.png does not exist/,
  ],
  ['mixed sizes', { 'a/1.png': rgb(1), 'b/1.png': rgb(2, 5, 3) }, /all images must have one size/],
  ['one class beside an image', { 'a/1.png': rgb(1), 'stray.png': rgb(2) }, /an image beside/],
  ['a non-image file named .png', { 'a/1.png': rgb(1), 'b/1.png': 'hello' }, /neither a PNG/],
  ['a BMP', { 'a/1.png': rgb(1), 'a/2.bmp': 'BM' }, /PNG and JPEG images only/],
  ['no images at all', { 'readme.txt': 'nothing here' }, /no images .* and no class folders/],
  [
    'a class folder without images',
    { 'a/1.png': rgb(1), 'b/readme.txt': 'x' },
    /a class folder with no images/,
  ],
];

describe('a picked folder (File objects) reads as the same folder on disk', () => {
  for (const [what, files, refused] of TREES) {
    it(what, async () => {
      const root = tree(files);
      const disk = await outcome(loadFolder(root, { note: () => undefined }));
      const page = await outcome(loadFolderFiles(picked(root), { note: () => undefined }));
      if (refused) {
        expect(disk.error).toMatch(refused);
        expect(page.error).toBe(disk.error!.replaceAll(root, path.basename(root)));
      } else {
        expect(disk.ok!.test).toBeDefined();
        expect(page).toEqual(disk);
      }
    });
  }

  it('refuses paths that are not one folder’s files, and an empty pick', () => {
    const f = new Blob(['x']);
    expect(() => filesFolderSource([])).toThrow(/holds no files/);
    expect(() =>
      filesFolderSource([
        { path: 'a/1.png', file: f },
        { path: 'b/1.png', file: f },
      ]),
    ).toThrow('b/1.png: not a file of the folder a/');
    expect(() => filesFolderSource([{ path: 'a/../1.png', file: f }])).toThrow(/not a file of/);
    expect(() =>
      filesFolderSource([
        { path: 'a/x', file: f },
        { path: 'a/x/1.png', file: f },
      ]),
    ).toThrow('a/x: both a file and a folder');
  });

  it('a file over the cap is refused before it is read', async () => {
    const big = { size: 2 ** 30, arrayBuffer: () => Promise.reject(new Error('read')) } as Blob;
    const src = filesFolderSource([{ path: 'p/a/1.png', file: big }]);
    await expect(src.read('p/a/1.png', { maxBytes: 100, what: 'PNG/JPEG file' })).rejects.toThrow(
      `p/a/1.png: ${2 ** 30} bytes, more than a PNG/JPEG file can be (100 at most)`,
    );
  });
});

/** A dropped folder as the File and Directories Entries API shows it, from a tree on disk; batches of 2 entries. */
function entryOf(dir: string): DirectoryEntryLike {
  return {
    name: path.basename(dir),
    isFile: false,
    isDirectory: true,
    createReader() {
      const names = fs.readdirSync(dir);
      let at = 0;
      return {
        readEntries(ok: (e: EntryLike[]) => void) {
          const batch = names.slice(at, at + 2).map((n): EntryLike => {
            const p = path.join(dir, n);
            if (fs.statSync(p).isDirectory()) return entryOf(p);
            return {
              name: n,
              isFile: true,
              isDirectory: false,
              file: (done: (f: File) => void) => done(new File([fs.readFileSync(p)], n)),
            } as EntryLike;
          });
          at += batch.length;
          setTimeout(() => ok(batch), 0);
        },
      };
    },
  };
}

describe('a dropped folder', () => {
  it('is walked into the files a picked folder gives (hidden folders skipped), and loads the same', async () => {
    const root = tree(TREES[0][1]);
    const files = await folderFilesFromEntry(entryOf(root));
    const byPath = (a: FolderFile, b: FolderFile) => (a.path < b.path ? -1 : 1);
    expect(files.map((f) => f.path).sort()).toEqual(
      picked(root)
        .map((f) => f.path)
        .filter((p) => !p.includes('/.git/'))
        .sort(),
    );
    const a = await loadFolderFiles(files.sort(byPath), { note: () => undefined });
    const b = await loadFolder(root, { note: () => undefined });
    expect(a.test).toEqual(b.test);
    expect(a.classes).toEqual(b.classes);
    expect(a.name).toBe(`folder:${path.basename(root)}`);
  });

  it('a file dropped instead of a folder: one line', async () => {
    await expect(
      folderFilesFromEntry({
        name: 'x.png',
        isFile: true,
        isDirectory: false,
      } as DirectoryEntryLike),
    ).rejects.toThrow('x.png: not a folder (drop a folder of class folders)');
  });
});

describe('class folders picked in a browser', () => {
  it('note that an empty class folder would go unseen, unless classes.txt names the classes', async () => {
    const png1 = new Blob([png(4, 4, 1, pattern(16, 1))]);
    const picked = [
      { path: 'pets/cat/1.png', file: png1 },
      { path: 'pets/dog/1.png', file: png1 },
    ];
    const notes: string[] = [];
    await loadFolderFiles(picked, { note: (l) => notes.push(l) });
    expect(notes.join('\n')).toMatch(
      /pets's classes are its folder names in order \(0 cat, 1 dog\); a browser does not list empty folders.*add pets\/classes.txt/,
    );
    const named: string[] = [];
    const classesTxt = { path: 'pets/classes.txt', file: new Blob(['cat\ndog\n']) };
    await loadFolderFiles([...picked, classesTxt], { note: (l) => named.push(l) });
    expect(named.join('\n')).not.toMatch(/empty folders/);
  });
});
