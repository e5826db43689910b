/**
 * `folder:PATH`: a data set of PNG/JPEG files on disk.
 *
 * - Class folders: PATH/<class>/**.png as torchvision's ImageFolder: classes sorted by name (byte
 *   order), label = index in that order, images in sorted order of their folder paths, then names,
 *   walking sub-folders and following links (a link loop is refused). A class folder without
 *   images is refused, as ImageFolder does.
 * - A flat folder with PATH/labels.csv (columns file,label; label a class index or a class name):
 *   images in the CSV's row order; class names from PATH/classes.txt (one per line, line i = class i)
 *   or else, for names, their sorted unique set, for indices '0'..'k-1'. Every image needs a row and
 *   every row an image.
 * - A flat folder without labels.csv: unlabeled images in sorted order of their names.
 * - PATH/train/ and PATH/test/ (or val/): the two splits, each laid out as above, sharing the
 *   training split's classes (or classes.txt). Otherwise everything is the test split.
 *
 * Hidden files and folders (names starting with '.') and files that are not .png/.jpg/.jpeg are
 * ignored; other image files (.bmp, .gif, .tif, .webp, …) are refused by name. All images must
 * have one size and channel count after decoding (fitImages resizes afterwards, when asked).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { optionError, RobustError } from '../util/errors.js';
import { readRegularFile } from '../util/read-file.js';
import { channelStats, emptySet, type DataSplit, type ImageSet } from './dataset.js';
import { decodeImage, imageFormat } from './images.js';
import { bytesText, DATA_LIMITS } from './limits.js';

interface FolderLoadOptions {
  /** Decode only the first N images of each split (test: `testLimit` when given). */
  limit?: number;
  testLimit?: number;
  /** Receives notes (which folder is the test split); default: stderr. */
  note?: (line: string) => void;
}

/** Byte order of the UTF-8 names, as Python sorts str (by code point); JS's default sort compares UTF-16 units. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const hidden = (name: string) => name.startsWith('.');

function statOf(p: string): fs.Stats {
  try {
    return fs.statSync(p); // follows links, as ImageFolder does
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RobustError(
      `${p}: cannot read (${code === 'ELOOP' ? 'a symbolic link loop' : code === 'ENOENT' ? 'a dangling symbolic link' : (code ?? (e as Error).message)})`,
    );
  }
}

function listDir(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => !hidden(n))
      .sort(byteOrder);
  } catch (e) {
    throw new RobustError(
      `${dir}: cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/** The visible entries of `dir`: sub-folders, image files robust reads; other image files are refused. */
function entries(dir: string): { dirs: string[]; images: string[] } {
  const dirs: string[] = [];
  const images: string[] = [];
  for (const name of listDir(dir)) {
    const p = path.join(dir, name);
    const format = imageFormat(name);
    let s: fs.Stats;
    try {
      s = statOf(p);
    } catch (e) {
      if (format === null) continue; // a dangling link named like no image: skipped, as ImageFolder skips it
      throw e;
    }
    if (format === null && !s.isDirectory()) continue; // README.txt, labels.csv, …
    if (s.isDirectory()) dirs.push(name);
    else if (format === 'other')
      throw new RobustError(
        `${p}: robust reads PNG and JPEG images only; convert it (or move it out of the folder)`,
      );
    else if (format !== null) images.push(name);
  }
  return { dirs, images };
}

/** Every image under a class folder, in ImageFolder's order: folders sorted by path, files by name. */
function walkClass(classDir: string, cap: number): string[] {
  const found: [dir: string, names: string[]][] = [];
  let total = 0;
  const visit = (dir: string, ancestors: string[], depth: number) => {
    const real = fs.realpathSync(dir);
    const loop = ancestors.indexOf(real);
    if (loop >= 0)
      throw new RobustError(`${dir}: a symbolic link loop (it is ${real}, a folder above it)`);
    if (depth > DATA_LIMITS.depth)
      throw new RobustError(
        `${dir}: more than ${DATA_LIMITS.depth} folder levels below ${classDir}`,
      );
    const { dirs, images } = entries(dir);
    total += images.length;
    if (total > cap)
      throw new RobustError(`${classDir}: more than ${cap} images, more than robust reads`);
    found.push([dir, images]);
    for (const d of dirs) visit(path.join(dir, d), [...ancestors, real], depth + 1);
  };
  visit(classDir, [], 0);
  found.sort((a, b) => byteOrder(a[0], b[0]));
  return found.flatMap(([dir, names]) => names.map((n) => path.join(dir, n)));
}

/** One split's image files and labels (indices into `classes`), before decoding. */
interface Listing {
  files: string[];
  labels: number[];
  unlabeled?: boolean;
}

/** The lines of classes.txt: one unique, non-empty class name per line. */
function readClassesTxt(file: string): string[] {
  const text = readRegularFile(file, { maxBytes: 16 * 2 ** 20, what: 'classes.txt' }).toString(
    'utf8',
  );
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const names = lines.map((l) => l.trim());
  const empty = names.indexOf('');
  if (empty >= 0)
    throw new RobustError(`${file}: line ${empty + 1} is empty: one class name per line`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new RobustError(`${file}: class '${twice}' is listed twice`);
  if (names.length === 0) throw new RobustError(`${file}: lists no classes`);
  return names;
}

interface CsvRows {
  file: string;
  rows: { name: string; label: string; line: number }[];
}

function readLabelsCsv(file: string): CsvRows {
  const text = readRegularFile(file, { maxBytes: 1 << 30, what: 'labels CSV' });
  let records: string[][];
  try {
    records = parseCsv(text, { bom: true, skip_empty_lines: true, trim: true }) as string[][];
  } catch (e) {
    throw new RobustError(`${file}: not a readable CSV (${(e as Error).message})`);
  }
  const header = records[0]?.map((h) => h.toLowerCase());
  if (!header || header.length !== 2 || header[0] !== 'file' || header[1] !== 'label') {
    throw new RobustError(
      `${file}: the first row must be the header file,label (found ${records[0] ? records[0].join(',') : 'nothing'})`,
    );
  }
  if (records.length > DATA_LIMITS.images + 1)
    throw new RobustError(`${file}: more than ${DATA_LIMITS.images} rows, more than robust reads`);
  const rows = records.slice(1).map(([name, label], i) => ({ name, label, line: i + 2 }));
  const empty = rows.find((r) => r.label === '' || r.label === undefined);
  if (empty) throw new RobustError(`${file}: line ${empty.line} has no label`);
  return { file, rows };
}

type Indexer = (label: string, where: string) => number;

/** Label → class index for CSV labels: all-digit labels are indices, anything else names. */
function indexer(classes: string[], numeric: boolean, what: string): Indexer {
  const at = new Map(classes.map((n, i) => [n, i]));
  return (label, where) => {
    const i = numeric ? Number(label) : at.get(label);
    if (i === undefined || i >= classes.length)
      throw new RobustError(
        `${where}: label '${label}' is ${numeric ? `not below the ${classes.length} classes of ${what}` : `not a class of ${what}`}`,
      );
    return i;
  };
}

/** Classes named by CSV labels (the training split's CSV first): sorted unique names, or '0'..'k-1' for indices. */
function csvClasses(csvs: CsvRows[]): { classes: string[]; fromLabels: boolean } {
  const isIndex = (r: { label: string }) => /^\d+$/.test(r.label);
  const numeric = csvs.every((c) => c.rows.every(isIndex));
  // one stray name would turn every index into a name and shift the labels: refuse the mix
  const anIndex = csvs.flatMap((c) =>
    c.rows
      .filter(isIndex)
      .slice(0, 1)
      .map((r) => ({ c, r })),
  )[0];
  const aName = csvs.flatMap((c) =>
    c.rows
      .filter((r) => !isIndex(r))
      .slice(0, 1)
      .map((r) => ({ c, r })),
  )[0];
  if (anIndex && aName) {
    throw new RobustError(
      `${aName.c.file}: labels mix class indices ('${anIndex.r.label}', ${anIndex.c.file} line ${anIndex.r.line}) and names ('${aName.r.label}', line ${aName.r.line}): use one or the other`,
    );
  }
  if (numeric) {
    const largest = Math.max(-1, ...csvs.flatMap((c) => c.rows.map((r) => Number(r.label))));
    return { classes: Array.from({ length: largest + 1 }, (_, i) => String(i)), fromLabels: true };
  }
  // as ImageFolder sorts class folder names; a test split's labels must be among the training split's
  return {
    classes: [...new Set(csvs[0].rows.map((r) => r.label))].sort(byteOrder),
    fromLabels: false,
  };
}

/** Files and labels of a flat folder from its CSV; every image needs a row and every row an image. */
function csvListing(dir: string, csv: CsvRows, images: string[], index: Indexer): Listing {
  const present = new Set(images);
  const listed = new Set<string>();
  const files: string[] = [];
  const labels: number[] = [];
  for (const r of csv.rows) {
    const where = `${csv.file} line ${r.line}`;
    if (r.name === '' || r.name.includes('/') || r.name.includes('\\'))
      throw new RobustError(`${where}: '${r.name}' is not a file name in ${dir} (no folders)`);
    if (listed.has(r.name)) throw new RobustError(`${where}: ${r.name} is listed twice`);
    if (!present.has(r.name))
      throw new RobustError(
        `${where}: ${path.join(dir, r.name)} ${fs.existsSync(path.join(dir, r.name)) ? 'is not a .png/.jpg/.jpeg file' : 'does not exist'}`,
      );
    listed.add(r.name);
    files.push(path.join(dir, r.name));
    labels.push(index(r.label, where));
  }
  const missing = images.find((n) => !listed.has(n));
  if (missing !== undefined)
    throw new RobustError(`${path.join(dir, missing)}: has no row in ${csv.file}`);
  return { files, labels };
}

type Layout =
  | { kind: 'classes'; dir: string; classDirs: string[] }
  | { kind: 'flat'; dir: string; images: string[]; csv?: CsvRows };

function layoutOf(dir: string): Layout {
  const { dirs, images } = entries(dir);
  const csv = path.join(dir, 'labels.csv');
  if (dirs.length > 0) {
    if (images.length > 0)
      throw new RobustError(
        `${path.join(dir, images[0])}: an image beside the class folders of ${dir}: put every image in its class folder`,
      );
    if (fs.existsSync(csv))
      throw new RobustError(
        `${dir}: has both class folders and labels.csv: which gives the labels is ambiguous`,
      );
    return { kind: 'classes', dir, classDirs: dirs };
  }
  if (images.length === 0)
    throw new RobustError(`${dir}: no images (.png, .jpg, .jpeg) and no class folders`);
  if (images.length > DATA_LIMITS.images)
    throw new RobustError(
      `${dir}: ${images.length} images, more than robust reads (${DATA_LIMITS.images})`,
    );
  return { kind: 'flat', dir, images, ...(fs.existsSync(csv) ? { csv: readLabelsCsv(csv) } : {}) };
}

/** The listings of the splits (training first when there is one) and the classes they share: the first split's, or classes.txt. */
function listSplits(
  layouts: Layout[],
  classesTxt: string | undefined,
): { listings: Listing[]; classes: string[]; fromLabels: boolean } {
  const given = classesTxt ? readClassesTxt(classesTxt) : undefined;
  const first = layouts[0];
  const csvs = layouts.flatMap((l) => (l.kind === 'flat' && l.csv ? [l.csv] : []));
  if (layouts.length > 1 && first.kind === 'flat' && !first.csv)
    throw new RobustError(
      `${first.dir}: training images need labels: add labels.csv (file,label) or use class folders`,
    );
  let classes: string[] | undefined;
  let fromLabels = false;
  if (given) classes = given;
  else if (first.kind === 'classes') classes = first.classDirs;
  else if (first.csv) ({ classes, fromLabels } = csvClasses(csvs));
  else fromLabels = true; // unlabeled and unnamed: the classes are whatever the model's are (withClassCount)
  classes ??= [];
  if (classes.length > DATA_LIMITS.classes)
    throw new RobustError(
      `${given ? classesTxt : first.dir}: ${classes.length} classes, more than robust handles (${DATA_LIMITS.classes}: labels are stored as bytes)`,
    );
  const what = given
    ? 'classes.txt'
    : first.kind === 'classes'
      ? `the class folders of ${first.dir}`
      : first.csv
        ? first.csv.file
        : first.dir;
  const numeric = csvs.every((c) => c.rows.every((r) => /^\d+$/.test(r.label)));
  const index = indexer(classes, numeric, what);
  const at = new Map(classes.map((n, i) => [n, i]));
  const listings = layouts.map((l): Listing => {
    if (l.kind === 'flat') {
      if (l.csv) return csvListing(l.dir, l.csv, l.images, index);
      return {
        files: l.images.map((n) => path.join(l.dir, n)),
        labels: l.images.map(() => 0),
        unlabeled: true,
      };
    }
    const files: string[] = [];
    const labels: number[] = [];
    for (const c of l.classDirs) {
      const label = at.get(c);
      if (label === undefined)
        throw new RobustError(`${path.join(l.dir, c)}: class '${c}' is not a class of ${what}`);
      const found = walkClass(path.join(l.dir, c), DATA_LIMITS.images - files.length);
      if (found.length === 0)
        throw new RobustError(
          `${path.join(l.dir, c)}: a class folder with no images (.png, .jpg, .jpeg)`,
        );
      files.push(...found);
      for (let i = 0; i < found.length; i++) labels.push(label);
    }
    return { files, labels };
  });
  return { listings, classes, fromLabels };
}

/** Decodes the listed images into one set; all must share the first one's size and channels. */
async function decodeAll(listing: Listing, limit: number | undefined): Promise<ImageSet> {
  const files = limit === undefined ? listing.files : listing.files.slice(0, limit);
  let out: Uint8Array | undefined;
  let shape = { height: 0, width: 0, channels: 0 };
  for (const [i, file] of files.entries()) {
    const img = await decodeImage(
      readRegularFile(file, { maxBytes: DATA_LIMITS.imageFileBytes, what: 'PNG/JPEG file' }),
      file,
    );
    if (!out) {
      shape = { height: img.height, width: img.width, channels: img.channels };
      const bytes = files.length * img.data.length;
      if (bytes > DATA_LIMITS.bytes)
        throw optionError(
          (n) =>
            `${path.dirname(file)}: ${files.length} images of ${img.width}×${img.height}×${img.channels} take ${bytesText(bytes)}, more than robust holds in memory (${bytesText(DATA_LIMITS.bytes)}); use fewer images (${n('limit')})`,
        );
      out = new Uint8Array(bytes);
    } else if (
      img.height !== shape.height ||
      img.width !== shape.width ||
      img.channels !== shape.channels
    ) {
      const kind = (c: number) => (c === 1 ? 'gray' : 'RGB');
      throw new RobustError(
        `${file}: ${img.width}×${img.height} ${kind(img.channels)}, but ${files[0]} is ${shape.width}×${shape.height} ${kind(shape.channels)}: all images must have one size and channel count`,
      );
    }
    out.set(img.data, i * img.data.length);
  }
  return {
    images: out ?? new Uint8Array(0),
    labels: Uint8Array.from(listing.labels.slice(0, files.length)),
    count: files.length,
    ...shape,
  };
}

/** Loads `folder:PATH` (see the top of this file for the layouts). */
export async function loadFolder(root: string, o: FolderLoadOptions = {}): Promise<DataSplit> {
  const abs = path.resolve(root);
  if (!fs.existsSync(abs)) throw new RobustError(`${abs}: no such folder`);
  if (!statOf(abs).isDirectory())
    throw new RobustError(`${abs}: not a folder (folder:PATH takes a folder of images)`);
  const note = o.note ?? ((line: string) => process.stderr.write(`${line}\n`));
  const top = entries(abs);
  const testName = top.dirs.includes('test')
    ? 'test'
    : top.dirs.includes('val')
      ? 'val'
      : undefined;
  const split = top.dirs.includes('train') && testName !== undefined;
  if (split) {
    if (top.images.length > 0)
      throw new RobustError(
        `${path.join(abs, top.images[0])}: an image beside the train/ and ${testName}/ folders: put it in a split`,
      );
    if (testName === 'test' && top.dirs.includes('val'))
      note(`${abs}: test/ is the test split (val/ is not used)`);
  }
  const layouts = split
    ? [layoutOf(path.join(abs, 'train')), layoutOf(path.join(abs, testName!))]
    : [layoutOf(abs)];
  const classesTxt = path.join(abs, 'classes.txt');
  const { listings, classes, fromLabels } = listSplits(
    layouts,
    fs.existsSync(classesTxt) ? classesTxt : undefined,
  );
  const testListing = listings[listings.length - 1];
  const test = await decodeAll(testListing, o.testLimit ?? o.limit);
  const train = split
    ? await decodeAll(listings[0], o.limit)
    : emptySet(test.height, test.width, test.channels);
  if (
    split &&
    (train.height !== test.height || train.width !== test.width || train.channels !== test.channels)
  ) {
    throw new RobustError(
      `${abs}: training images are ${train.width}×${train.height}×${train.channels} but test images ${test.width}×${test.height}×${test.channels}`,
    );
  }
  return {
    name: `folder:${abs}`,
    location: abs,
    classes,
    ...(fromLabels ? { classesFrom: 'labels' as const } : {}),
    ...(testListing.unlabeled ? { unlabeled: true } : {}),
    train,
    test,
    ...channelStats(train.count > 0 ? train : test),
  };
}
