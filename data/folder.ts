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
 *
 * The rules read the folder through a FolderSource: the disk in Node (data/folder-node.ts, the
 * CLI's folder:PATH), the files a page was given in a browser (data/folder-files.ts); one set of
 * rules, so a page and `robust eval` read one folder into the same images and labels.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { optionError, RobustError } from '../util/errors.js';
import { channelStats, emptySet, type DataSplit, type ImageSet } from './dataset.js';
import { decodeImage, imageFormat } from './images.js';
import { bytesText, DATA_LIMITS } from './limits.js';
import { escapedControls } from '../util/format.js';

/** Why a folder has no test labels or no training images, and what would give them. */
export const FOLDER_HINT = {
  labels: 'no class folders and no labels.csv',
  train: 'no train/ and test/ (or val/) sub-folders',
};

/** What a file read must stay within, and what the file is, for messages. */
export interface ReadLimits {
  maxBytes: number;
  what: string;
}

/**
 * A tree of folders and files the rules read: paths are strings the source joins and names in
 * messages; everything it cannot do is a RobustError naming the path.
 */
export interface FolderSource {
  /** The folder to load: an absolute path on disk, or the picked folder's name in a page. */
  readonly root: string;
  join(dir: string, name: string): string;
  dirname(file: string): string;
  /** Whether `path` names something (links followed; a dangling link does not exist). */
  exists(path: string): Promise<boolean>;
  /** Whether `path` is a folder (links followed); throws when it cannot be read (a link loop, a dangling link). */
  isDirectory(path: string): Promise<boolean>;
  /** Every name in `dir`, in any order. */
  list(dir: string): Promise<string[]>;
  /** The folder's identity with links resolved (a loop is a folder that is its own ancestor). */
  realpath(dir: string): Promise<string>;
  /** A regular file's bytes, refused in one line when larger than `limits.maxBytes`. */
  read(file: string, limits: ReadLimits): Promise<Uint8Array>;
  /** False where empty folders are not listed (a browser's picked files): an empty class folder goes unseen. */
  readonly listsEmptyFolders?: boolean;
}

export interface FolderLoadOptions {
  /** Decode only the first N images of each split (test: `testLimit` when given). */
  limit?: number;
  testLimit?: number;
  /** Receives notes (which folder is the test split). */
  note: (line: string) => void;
}

const utf8 = new TextEncoder();

/** Byte order of the UTF-8 names, as Python sorts str (by code point); JS's default sort compares UTF-16 units. */
export function byteOrder(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const hidden = (name: string) => name.startsWith('.');

async function listDir(src: FolderSource, dir: string): Promise<string[]> {
  return (await src.list(dir)).filter((n) => !hidden(n)).sort(byteOrder);
}

/** The visible entries of `dir`: sub-folders, image files robust reads; other image files are refused. */
async function entries(
  src: FolderSource,
  dir: string,
): Promise<{ dirs: string[]; images: string[] }> {
  const dirs: string[] = [];
  const images: string[] = [];
  for (const name of await listDir(src, dir)) {
    const p = src.join(dir, name);
    const format = imageFormat(name);
    let isDir: boolean;
    try {
      isDir = await src.isDirectory(p); // follows links, as ImageFolder does
    } catch (e) {
      if (format === null) continue; // a dangling link named like no image: skipped, as ImageFolder skips it
      throw e;
    }
    if (format === null && !isDir) continue; // README.txt, labels.csv, …
    if (isDir) dirs.push(name);
    else if (format === 'other')
      throw new RobustError(
        `${p}: robust reads PNG and JPEG images only; convert it (or move it out of the folder)`,
      );
    else if (format !== null) images.push(name);
  }
  return { dirs, images };
}

/** Every image under a class folder, in ImageFolder's order: folders sorted by path, files by name. */
async function walkClass(src: FolderSource, classDir: string, cap: number): Promise<string[]> {
  const found: [dir: string, names: string[]][] = [];
  let total = 0;
  const visit = async (dir: string, ancestors: string[], depth: number) => {
    const real = await src.realpath(dir);
    const loop = ancestors.indexOf(real);
    if (loop >= 0)
      throw new RobustError(`${dir}: a symbolic link loop (it is ${real}, a folder above it)`);
    if (depth > DATA_LIMITS.depth)
      throw new RobustError(
        `${dir}: more than ${DATA_LIMITS.depth} folder levels below ${classDir}`,
      );
    const { dirs, images } = await entries(src, dir);
    total += images.length;
    if (total > cap)
      throw new RobustError(`${classDir}: more than ${cap} images, more than robust reads`);
    found.push([dir, images]);
    for (const d of dirs) await visit(src.join(dir, d), [...ancestors, real], depth + 1);
  };
  await visit(classDir, [], 0);
  found.sort((a, b) => byteOrder(a[0], b[0]));
  return found.flatMap(([dir, names]) => names.map((n) => src.join(dir, n)));
}

/** One split's image files and labels (indices into `classes`), before decoding. */
interface Listing {
  files: string[];
  labels: number[];
  unlabeled?: boolean;
}

/**
 * Refuses a class name with a control character. Names reach terminals, Markdown and HTML, where
 * an ESC or a line break would act instead of being shown; refused here, at the one place names
 * come from, no output has to escape them, and the message shows the name escaped.
 */
function checkClassName(name: string, where: string): void {
  const shown = escapedControls(name);
  if (shown !== undefined)
    throw new RobustError(
      `${where}: class name "${shown}" holds a control character: rename it (class names are printed and put in reports)`,
    );
}

/** The lines of classes.txt: one unique, non-empty class name per line. */
async function readClassesTxt(src: FolderSource, file: string): Promise<string[]> {
  const text = new TextDecoder().decode(
    await src.read(file, { maxBytes: 16 * 2 ** 20, what: 'classes.txt' }),
  );
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  const names = lines.map((l) => l.trim());
  names.forEach((n, i) => checkClassName(n, `${file}: line ${i + 1}`));
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

async function readLabelsCsv(src: FolderSource, file: string): Promise<CsvRows> {
  // decoded here (a BOM dropped): csv-parse's browser build takes text, not Uint8Array
  const text = new TextDecoder().decode(
    await src.read(file, { maxBytes: 1 << 30, what: 'labels CSV' }),
  );
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
  for (const r of rows) checkClassName(r.label, `${file}: line ${r.line}`);
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
async function csvListing(
  src: FolderSource,
  dir: string,
  csv: CsvRows,
  images: string[],
  index: Indexer,
): Promise<Listing> {
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
        `${where}: ${src.join(dir, r.name)} ${(await src.exists(src.join(dir, r.name))) ? 'is not a .png/.jpg/.jpeg file' : 'does not exist'}`,
      );
    listed.add(r.name);
    files.push(src.join(dir, r.name));
    labels.push(index(r.label, where));
  }
  const missing = images.find((n) => !listed.has(n));
  if (missing !== undefined)
    throw new RobustError(`${src.join(dir, missing)}: has no row in ${csv.file}`);
  return { files, labels };
}

type Layout =
  | { kind: 'classes'; dir: string; classDirs: string[] }
  | { kind: 'flat'; dir: string; images: string[]; csv?: CsvRows };

async function layoutOf(src: FolderSource, dir: string): Promise<Layout> {
  const { dirs, images } = await entries(src, dir);
  const csv = src.join(dir, 'labels.csv');
  if (dirs.length > 0) {
    if (images.length > 0)
      throw new RobustError(
        `${src.join(dir, images[0])}: an image beside the class folders of ${dir}: put every image in its class folder`,
      );
    if (await src.exists(csv))
      throw new RobustError(
        `${dir}: has both class folders and labels.csv: which gives the labels is ambiguous`,
      );
    for (const d of dirs) checkClassName(d, dir);
    return { kind: 'classes', dir, classDirs: dirs };
  }
  if (images.length === 0)
    throw new RobustError(`${dir}: no images (.png, .jpg, .jpeg) and no class folders`);
  if (images.length > DATA_LIMITS.images)
    throw new RobustError(
      `${dir}: ${images.length} images, more than robust reads (${DATA_LIMITS.images})`,
    );
  return {
    kind: 'flat',
    dir,
    images,
    ...((await src.exists(csv)) ? { csv: await readLabelsCsv(src, csv) } : {}),
  };
}

/** The listings of the splits (training first when there is one) and the classes they share: the first split's, or classes.txt. */
async function listSplits(
  src: FolderSource,
  layouts: Layout[],
  classesTxt: string | undefined,
): Promise<{ listings: Listing[]; classes: string[]; fromLabels: boolean }> {
  const given = classesTxt ? await readClassesTxt(src, classesTxt) : undefined;
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
  const listings: Listing[] = [];
  for (const l of layouts) {
    if (l.kind === 'flat') {
      listings.push(
        l.csv
          ? await csvListing(src, l.dir, l.csv, l.images, index)
          : {
              files: l.images.map((n) => src.join(l.dir, n)),
              labels: l.images.map(() => 0),
              unlabeled: true,
            },
      );
      continue;
    }
    const files: string[] = [];
    const labels: number[] = [];
    for (const c of l.classDirs) {
      const label = at.get(c);
      if (label === undefined)
        throw new RobustError(`${src.join(l.dir, c)}: class '${c}' is not a class of ${what}`);
      const found = await walkClass(src, src.join(l.dir, c), DATA_LIMITS.images - files.length);
      if (found.length === 0)
        throw new RobustError(
          `${src.join(l.dir, c)}: a class folder with no images (.png, .jpg, .jpeg)`,
        );
      files.push(...found);
      for (let i = 0; i < found.length; i++) labels.push(label);
    }
    listings.push({ files, labels });
  }
  return { listings, classes, fromLabels };
}

/** Decodes the listed images into one set; all must share the first one's size and channels. */
async function decodeAll(
  src: FolderSource,
  listing: Listing,
  limit: number | undefined,
): Promise<ImageSet> {
  const files = limit === undefined ? listing.files : listing.files.slice(0, limit);
  let out: Uint8Array | undefined;
  let shape = { height: 0, width: 0, channels: 0 };
  for (const [i, file] of files.entries()) {
    const img = await decodeImage(
      await src.read(file, { maxBytes: DATA_LIMITS.imageFileBytes, what: 'PNG/JPEG file' }),
      file,
    );
    if (!out) {
      shape = { height: img.height, width: img.width, channels: img.channels };
      const bytes = files.length * img.data.length;
      if (bytes > DATA_LIMITS.bytes)
        throw optionError(
          (n) =>
            `${src.dirname(file)}: ${files.length} images of ${img.width}×${img.height}×${img.channels} take ${bytesText(bytes)}, more than robust holds in memory (${bytesText(DATA_LIMITS.bytes)}); use fewer images (${n('limit')})`,
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

/** Loads the folder `src` holds (see the top of this file for the layouts) as `folder:ROOT`. */
export async function readFolder(src: FolderSource, o: FolderLoadOptions): Promise<DataSplit> {
  const abs = src.root;
  if (!(await src.exists(abs))) throw new RobustError(`${abs}: no such folder`);
  if (!(await src.isDirectory(abs)))
    throw new RobustError(`${abs}: not a folder (folder:PATH takes a folder of images)`);
  const top = await entries(src, abs);
  const testName = top.dirs.includes('test')
    ? 'test'
    : top.dirs.includes('val')
      ? 'val'
      : undefined;
  const split = top.dirs.includes('train') && testName !== undefined;
  if (split) {
    if (top.images.length > 0)
      throw new RobustError(
        `${src.join(abs, top.images[0])}: an image beside the train/ and ${testName}/ folders: put it in a split`,
      );
    if (testName === 'test' && top.dirs.includes('val'))
      o.note(`${abs}: test/ is the test split (val/ is not used)`);
  }
  const layouts = split
    ? [await layoutOf(src, src.join(abs, 'train')), await layoutOf(src, src.join(abs, testName!))]
    : [await layoutOf(src, abs)];
  const classesTxt = src.join(abs, 'classes.txt');
  const { listings, classes, fromLabels } = await listSplits(
    src,
    layouts,
    (await src.exists(classesTxt)) ? classesTxt : undefined,
  );
  if (
    src.listsEmptyFolders === false &&
    layouts[0].kind === 'classes' &&
    !fromLabels &&
    !(await src.exists(classesTxt))
  )
    // robust eval refuses an empty class folder; here it would vanish and shift the labels after it
    o.note(
      `note: ${abs}'s classes are its folder names in order (${classes
        .slice(0, 12)
        .map((c, i) => `${i} ${c}`)
        .join(
          ', ',
        )}${classes.length > 12 ? ', …' : ''}); a browser does not list empty folders, so an empty class folder would go unseen and shift these: add ${abs}/classes.txt to name them`,
    );
  const testListing = listings[listings.length - 1];
  const test = await decodeAll(src, testListing, o.testLimit ?? o.limit);
  const train = split
    ? await decodeAll(src, listings[0], o.limit)
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
