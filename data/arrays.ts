/**
 * Data sets saved by Python users as NumPy arrays: `npz:FILE` (np.savez / np.savez_compressed with
 * x, y or x_train, y_train, x_test, y_test, Keras' layout) and `npy:X.npy[,Y.npy]`. Images are
 * uint8 (0..255) or float32/float64 in [0,1], N×H×W×C, N×C×H×W or N×H×W; labels any integer type.
 */
import path from 'node:path';
import { unzipSync } from 'fflate';
import { RobustError } from '../util/errors.js';
import { readRegularFile } from '../util/read-file.js';
import { channelStats, emptySet, type DataSplit, type ImageSet } from './dataset.js';
import { bytesText, DATA_LIMITS } from './limits.js';
import { elementReader, parseNpy, readNpyFile, type NpyArray } from './npy.js';

interface ArrayLoadOptions {
  /** Convert only the first N images of each split. */
  limit?: number;
  testLimit?: number;
  /** Receives notes (the layout assumed, float rounding); default: stderr. */
  note?: (line: string) => void;
}

const toStderr = (line: string) => process.stderr.write(`${line}\n`);

/** Float pixels farther than this from a multiple of 1/255 (in 1/255 units) count as rounded. */
const EXACT = 1e-3;

/**
 * The images of array `x` as uint8 NHWC (the first `limit`). NCHW is assumed when dim 1 is 1 or 3
 * and the last dim is not, and said in a note; floats must lie in [0,1] and are rounded to k/255.
 */
function imagesFromArray(
  x: NpyArray,
  source: string,
  o: { limit?: number; note: (line: string) => void },
): Omit<ImageSet, 'labels'> {
  const { shape, dtype } = x.header;
  const isFloat = dtype.kind === 'f';
  if (!isFloat && !(dtype.kind === 'u' && dtype.size === 1)) {
    throw new RobustError(
      `${source}: dtype ${dtype.descr}: images must be uint8 (0..255) or float32/float64 in [0,1]`,
    );
  }
  let n: number, h: number, w: number, c: number;
  let nchw = false;
  if (shape.length === 3) [n, h, w, c] = [...shape, 1];
  else if (shape.length === 4) {
    nchw = (shape[1] === 1 || shape[1] === 3) && shape[3] !== 1 && shape[3] !== 3;
    [n, h, w, c] = nchw ? [shape[0], shape[2], shape[3], shape[1]] : shape;
    if (c !== 1 && c !== 3)
      throw new RobustError(
        `${source}: shape (${shape.join(', ')}) has neither 1 nor 3 channels first or last (gray or RGB images, N×H×W×C or N×C×H×W)`,
      );
    o.note(
      `${source}: shape (${shape.join(', ')}) read as ${nchw ? 'N×C×H×W (channels first, as PyTorch)' : 'N×H×W×C (channels last)'}`,
    );
  } else
    throw new RobustError(
      `${source}: shape (${shape.join(', ')}): images must be N×H×W×C, N×C×H×W or N×H×W`,
    );
  if (h === 0 || w === 0)
    throw new RobustError(`${source}: shape (${shape.join(', ')}) has empty images`);
  if (h * w > DATA_LIMITS.pixels)
    throw new RobustError(
      `${source}: images of ${h}×${w} pixels, more than robust reads (${DATA_LIMITS.pixels})`,
    );
  if (n > DATA_LIMITS.images)
    throw new RobustError(`${source}: ${n} images, more than robust reads (${DATA_LIMITS.images})`);
  const count = Math.min(n, o.limit ?? n);
  const per = h * w * c;
  const images = new Uint8Array(count * per);
  if (!isFloat && !nchw) {
    images.set(new Uint8Array(x.data.buffer, x.data.byteOffset, count * per));
    return { images, count, height: h, width: w, channels: c };
  }
  const get = elementReader(x);
  let rounded = 0;
  let worst = 0;
  for (let i = 0; i < count; i++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let k = 0; k < c; k++) {
          const src = nchw ? ((i * c + k) * h + y) * w + xx : ((i * h + y) * w + xx) * c + k;
          const v = get(src);
          let q = v;
          if (isFloat) {
            if (!(v >= 0 && v <= 1))
              throw new RobustError(
                `${source}: value ${v} at index ${src} (image ${i}) is outside [0,1]: float images must be scaled to [0,1] (uint8 images 0..255)`,
              );
            q = Math.round(v * 255);
            const off = Math.abs(v * 255 - q);
            if (off > EXACT) rounded++;
            if (off > worst) worst = off;
          }
          images[((i * h + y) * w + xx) * c + k] = q;
        }
      }
    }
  }
  if (rounded > 0)
    o.note(
      `${source}: ${rounded} of ${count * per} float values are not multiples of 1/255: rounded to 8 bits (largest change ${worst.toFixed(3)}/255)`,
    );
  return { images, count, height: h, width: w, channels: c };
}

/** Labels from array `y` (N or N×1 integers, 0..255), the first `limit`; `n` is the image count. */
function labelsFromArray(
  y: NpyArray,
  n: number,
  source: string,
  limit?: number,
): { labels: Uint8Array; largest: number } {
  const { shape, dtype } = y.header;
  if (dtype.kind !== 'i' && dtype.kind !== 'u')
    throw new RobustError(
      `${source}: dtype ${dtype.descr}: labels must be integers (class indices)`,
    );
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1)))
    throw new RobustError(
      `${source}: shape (${shape.join(', ')}): labels must be one integer per image (N or N×1)`,
    );
  if (shape[0] !== n) throw new RobustError(`${source}: ${shape[0]} labels for ${n} images`);
  const get = elementReader(y);
  const labels = new Uint8Array(Math.min(n, limit ?? n));
  let largest = -1;
  // every label is checked (and counts toward the classes), not only the first `limit`
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (!(v >= 0 && v < DATA_LIMITS.classes))
      throw new RobustError(
        `${source}: label ${v} at index ${i} is outside 0–${DATA_LIMITS.classes - 1}`,
      );
    if (i < labels.length) labels[i] = v;
    if (v > largest) largest = v;
  }
  return { labels, largest };
}

interface SplitArrays {
  x: NpyArray;
  y?: NpyArray;
  xName: string;
  yName?: string;
}

/** A DataSplit from the arrays of its test split and, optionally, its training split. */
function splitFrom(
  name: string,
  location: string,
  test: SplitArrays,
  train: SplitArrays | undefined,
  o: ArrayLoadOptions,
): DataSplit {
  const note = o.note ?? toStderr;
  const set = (a: SplitArrays, limit: number | undefined) => {
    const images = imagesFromArray(a.x, a.xName, { limit, note });
    if (!a.y) return { set: { ...images, labels: new Uint8Array(images.count) }, largest: -1 };
    const { labels, largest } = labelsFromArray(a.y, a.x.header.shape[0], a.yName!, limit);
    return { set: { ...images, labels }, largest };
  };
  const te = set(test, o.testLimit ?? o.limit);
  const tr = train ? set(train, o.limit) : undefined;
  if (
    tr &&
    (tr.set.height !== te.set.height ||
      tr.set.width !== te.set.width ||
      tr.set.channels !== te.set.channels)
  ) {
    throw new RobustError(
      `${train!.xName}: training images are ${tr.set.height}×${tr.set.width}×${tr.set.channels} but test images ${te.set.height}×${te.set.width}×${te.set.channels}`,
    );
  }
  const largest = Math.max(te.largest, tr?.largest ?? -1);
  const trainSet = tr?.set ?? emptySet(te.set.height, te.set.width, te.set.channels);
  return {
    name,
    location,
    classes: Array.from({ length: largest + 1 }, (_, i) => String(i)),
    classesFrom: 'labels',
    ...(test.y ? {} : { unlabeled: true }),
    train: trainSet,
    test: te.set,
    ...channelStats(trainSet.count > 0 ? trainSet : te.set),
  };
}

/** Member names robust reads from an .npz (numpy stores each array as NAME.npy). */
const NPZ_KEYS = ['x', 'y', 'x_train', 'y_train', 'x_test', 'y_test'];
/** Deflate cannot expand data more than ~1032×: a member declaring more lies about its size. */
const MAX_DEFLATE_RATIO = 1100;

/** The arrays of an .npz, checked member by member before any is inflated. */
function readNpzMembers(file: string): Map<string, NpyArray> {
  const bytes = readRegularFile(file, { maxBytes: DATA_LIMITS.arrayFileBytes, what: '.npz file' });
  const seen = new Set<string>();
  const found: string[] = [];
  let total = 0;
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, {
      filter: (f) => {
        found.push(f.name);
        const key = f.name.replace(/\.npy$/, '');
        if (!NPZ_KEYS.includes(key)) return false;
        if (seen.has(key))
          throw new RobustError(`${file}: holds ${f.name} twice: which one is meant is ambiguous`);
        seen.add(key);
        total += f.originalSize;
        if (total > DATA_LIMITS.arrayFileBytes)
          throw new RobustError(
            `${file}: its arrays unpack to more than robust reads (${bytesText(DATA_LIMITS.arrayFileBytes)})`,
          );
        if (f.compression === 8 && f.originalSize > MAX_DEFLATE_RATIO * f.size + 1024)
          throw new RobustError(
            `${file}: member ${f.name} claims ${f.originalSize} bytes from ${f.size} compressed: more than deflate can produce (damaged or hostile)`,
          );
        if (f.compression !== 0 && f.compression !== 8)
          throw new RobustError(
            `${file}: member ${f.name} uses zip compression method ${f.compression}; numpy writes stored (0) or deflated (8) members`,
          );
        return true;
      },
    });
  } catch (e) {
    if (e instanceof RobustError) throw e;
    throw new RobustError(`${file}: not a readable .npz (zip) file (${(e as Error).message})`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(members))
    arrays.set(name.replace(/\.npy$/, ''), parseNpy(data, `${file}: ${name}`));
  if (!arrays.has('x') && !arrays.has('x_test')) {
    throw new RobustError(
      `${file}: no array x (or x_test) among its members (${found.join(', ') || 'none'}): save the images as x (and labels as y), e.g. np.savez(f, x=images, y=labels)`,
    );
  }
  return arrays;
}

/** `npz:FILE`: x [, y] as the test split, or Keras' x_train, y_train, x_test, y_test. */
export function loadNpz(file: string, o: ArrayLoadOptions = {}): DataSplit {
  const abs = path.resolve(file);
  const a = readNpzMembers(abs);
  const member = (k: string) => `${abs}: ${k}.npy`;
  const keras = a.has('x_test');
  if (keras && a.has('x'))
    throw new RobustError(
      `${abs}: holds both x and x_test: which are the test images is ambiguous`,
    );
  const testKey = keras ? 'x_test' : 'x';
  const yKey = keras ? 'y_test' : 'y';
  if (!keras && (a.has('x_train') || a.has('y_train')))
    throw new RobustError(
      `${abs}: holds x_train but x instead of x_test: name the test split x_test (Keras' layout) or leave out x_train`,
    );
  if (a.has('x_train') !== a.has('y_train'))
    throw new RobustError(
      `${abs}: holds ${a.has('x_train') ? 'x_train but no y_train' : 'y_train but no x_train'}: training images need their labels`,
    );
  if (a.has(yKey) && !a.has(testKey))
    throw new RobustError(`${abs}: holds ${yKey} but no ${testKey}`);
  const test: SplitArrays = {
    x: a.get(testKey)!,
    xName: member(testKey),
    y: a.get(yKey),
    yName: a.has(yKey) ? member(yKey) : undefined,
  };
  const train: SplitArrays | undefined = a.has('x_train')
    ? {
        x: a.get('x_train')!,
        xName: member('x_train'),
        y: a.get('y_train')!,
        yName: member('y_train'),
      }
    : undefined;
  return splitFrom(`npz:${abs}`, path.dirname(abs), test, train, o);
}

/** `npy:X.npy[,Y.npy]`: images and optional labels, the test split. */
export function loadNpyFiles(
  xFile: string,
  yFile: string | undefined,
  o: ArrayLoadOptions = {},
): DataSplit {
  const xs = path.resolve(xFile);
  const ys = yFile === undefined ? undefined : path.resolve(yFile);
  const test: SplitArrays = {
    x: readNpyFile(xs),
    xName: xs,
    ...(ys ? { y: readNpyFile(ys), yName: ys } : {}),
  };
  return splitFrom(`npy:${xs}${ys ? `,${ys}` : ''}`, path.dirname(xs), test, undefined, o);
}
