/**
 * NumPy's .npy format (NEP 1): a magic string, a version, a header that is a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (10, 32, 32, 3), } and the raw array bytes.
 * Only plain numeric dtypes are read; object arrays (pickles), structured and string dtypes and
 * Fortran order are refused in one line. The shape is checked against the bytes present before
 * anything is allocated, so a header lying about the shape cannot ask for memory.
 */
import fs from 'node:fs';
import { RobustError } from '../util/errors.js';
import { openRegularFile } from '../util/read-file.js';
import { bytesText, DATA_LIMITS } from './limits.js';

const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** numpy writes a few hundred bytes at most for plain dtypes; it refuses over 10,000 by default. */
const MAX_HEADER = 65_536;

interface NpyDtype {
  /** b bool, i signed, u unsigned, f float. */
  kind: 'b' | 'i' | 'u' | 'f';
  size: 1 | 2 | 4 | 8;
  littleEndian: boolean;
  /** As written in the header, for messages ('<f4'). */
  descr: string;
}

export interface NpyHeader {
  version: string;
  dtype: NpyDtype;
  shape: number[];
  /** Elements (the product of the shape). */
  count: number;
  /** Where the data starts and how many bytes it has. */
  dataOffset: number;
  dataBytes: number;
}

export interface NpyArray {
  header: NpyHeader;
  /** The array's bytes. */
  data: DataView;
}

// ---- the header: a Python literal of dicts, tuples, strings, ints and booleans ----

interface Tuple {
  tuple: PyValue[];
}
type PyValue = string | number | boolean | null | PyValue[] | Tuple | Map<string, PyValue>;

/** Parses the subset of Python literals numpy writes (`ast.literal_eval` on the header). */
function parseLiteral(text: string, source: string): PyValue {
  let at = 0;
  const fail = (why: string): never => {
    throw new RobustError(
      `${source}: not a .npy header numpy writes (${why} at character ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 10), at + 20))})`,
    );
  };
  const space = () => {
    while (at < text.length && /\s/.test(text[at])) at++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) fail('nested too deeply');
    space();
    const c = text[at];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      at++;
      const items: PyValue[] = [];
      const dict = new Map<string, PyValue>();
      let sawComma = false;
      for (;;) {
        space();
        if (text[at] === close) {
          at++;
          break;
        }
        const item = value(depth + 1);
        if (c === '{') {
          if (typeof item !== 'string') fail('a dict key that is not a string');
          space();
          if (text[at] !== ':') fail("expected ':'");
          at++;
          if (dict.has(item as string)) fail(`key '${item}' twice`);
          dict.set(item as string, value(depth + 1));
        } else items.push(item);
        space();
        if (text[at] === ',') {
          at++;
          sawComma = true;
        } else if (text[at] !== close) fail(`expected ',' or '${close}'`);
      }
      if (c === '{') return dict;
      // (5) is a parenthesized 5, (5,) a one-tuple
      if (c === '(') return items.length === 1 && !sawComma ? items[0] : { tuple: items };
      return items;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, at + 1);
      if (end < 0) fail('an unterminated string');
      const s = text.slice(at + 1, end);
      if (s.includes('\\')) fail('an escape in a string');
      at = end + 1;
      return s;
    }
    const word = /^(?:True|False|None|-?\d+L?)/.exec(text.slice(at, at + 40));
    if (!word) return fail('an unexpected character');
    at += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    const n = Number(word[0].replace(/L$/, ''));
    if (!Number.isSafeInteger(n)) fail(`the number ${word[0]} is too large`);
    return n;
  };
  const v = value(0);
  space();
  if (at !== text.length) fail('text after the header dict');
  return v;
}

const KIND_SIZES: Record<string, number[]> = {
  b: [1],
  i: [1, 2, 4, 8],
  u: [1, 2, 4, 8],
  f: [4, 8],
};

function parseDescr(descr: PyValue, source: string): NpyDtype {
  if (typeof descr !== 'string')
    throw new RobustError(
      `${source}: a structured dtype (fields): only plain number arrays are read`,
    );
  if (/^[<>|=]?O\d*$/.test(descr))
    throw new RobustError(
      `${source}: an object array (dtype ${descr}, Python objects pickled): refused; save plain numbers (e.g. x.astype(np.uint8))`,
    );
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  const size = Number(m?.[3]);
  if (!m || !KIND_SIZES[m[2]]?.includes(size)) {
    throw new RobustError(
      `${source}: dtype '${descr}' is not a plain bool, int, uint or float32/float64 type: refused`,
    );
  }
  return {
    kind: m[2] as NpyDtype['kind'],
    size: size as NpyDtype['size'],
    littleEndian: m[1] !== '>',
    descr,
  };
}

/** The number of elements of `shape`, refused when it is beyond any array we could hold. */
function elements(shape: number[], itemSize: number, source: string): number {
  let n = 1n;
  for (const d of shape) n *= BigInt(d);
  if (n * BigInt(itemSize) > BigInt(DATA_LIMITS.arrayFileBytes)) {
    throw new RobustError(
      `${source}: shape (${shape.join(', ')}) is ${n} elements (${bytesText(Number(n) * itemSize)}), more than robust reads (${bytesText(DATA_LIMITS.arrayFileBytes)})`,
    );
  }
  return Number(n);
}

/**
 * Parses the header at the start of `prefix` (which holds at least the whole header when the file
 * has one); `totalBytes` is the size of the whole file or member, checked against the shape.
 */
function parseNpyHeader(prefix: Uint8Array, totalBytes: number, source: string): NpyHeader {
  if (NPY_MAGIC.some((b, i) => i < prefix.length && prefix[i] !== b) || prefix.length === 0)
    throw new RobustError(`${source}: not a .npy file (no \\x93NUMPY magic)`);
  if (prefix.length < 10)
    throw new RobustError(`${source}: truncated .npy file (${prefix.length} bytes)`);
  const major = prefix[6];
  const minor = prefix[7];
  if (major < 1 || major > 3)
    throw new RobustError(
      `${source}: .npy format version ${major}.${minor}: robust reads versions 1 to 3`,
    );
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (prefix.length < 8 + lenBytes) throw new RobustError(`${source}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = 8 + lenBytes + headerLen;
  if (headerLen > MAX_HEADER)
    throw new RobustError(
      `${source}: a .npy header of ${headerLen} bytes, more than numpy writes for a plain array`,
    );
  if (dataOffset > totalBytes || dataOffset > prefix.length)
    throw new RobustError(`${source}: truncated .npy header (${headerLen} bytes announced)`);
  const raw = prefix.subarray(8 + lenBytes, dataOffset);
  // versions 1 and 2 are latin-1, version 3 is UTF-8; a plain array's header is ASCII either way
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw).replace(/\s+$/, '');
  const dict = parseLiteral(text, source);
  if (!(dict instanceof Map)) throw new RobustError(`${source}: the .npy header is not a dict`);
  const keys = [...dict.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape')
    throw new RobustError(
      `${source}: the .npy header has keys ${keys || 'none'}, not descr, fortran_order and shape`,
    );
  const dtype = parseDescr(dict.get('descr')!, source);
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean')
    throw new RobustError(`${source}: fortran_order is not True or False`);
  if (fortran)
    throw new RobustError(
      `${source}: a Fortran-order (column-major) array: refused; save it with np.save(f, np.ascontiguousarray(a))`,
    );
  const shapeValue = dict.get('shape');
  const dims = (shapeValue as Tuple | undefined)?.tuple;
  if (!dims || !dims.every((d) => typeof d === 'number' && d >= 0))
    throw new RobustError(`${source}: the shape is not a tuple of non-negative integers`);
  const shape = dims as number[];
  const count = elements(shape, dtype.size, source);
  const dataBytes = count * dtype.size;
  const present = totalBytes - dataOffset;
  if (present !== dataBytes) {
    throw new RobustError(
      `${source}: the header says shape (${shape.join(', ')}) of ${dtype.descr}, ${dataBytes} bytes, but ${present} bytes follow it (${present < dataBytes ? 'truncated' : 'a header that does not match its data'})`,
    );
  }
  return { version: `${major}.${minor}`, dtype, shape, count, dataOffset, dataBytes };
}

/** An .npy file or zip member already in memory. */
export function parseNpy(bytes: Uint8Array, source: string): NpyArray {
  const header = parseNpyHeader(bytes, bytes.length, source);
  return {
    header,
    data: new DataView(bytes.buffer, bytes.byteOffset + header.dataOffset, header.dataBytes),
  };
}

/** An .npy file: the header is read and checked first, then exactly the bytes it announces. */
export function readNpyFile(file: string): NpyArray {
  const { fd, size } = openRegularFile(file, {
    maxBytes: DATA_LIMITS.arrayFileBytes + MAX_HEADER + 12,
    what: '.npy file',
  });
  try {
    const read = (buf: Uint8Array, at: number) => {
      let n = 0;
      while (n < buf.length) {
        const got = fs.readSync(fd, buf, n, buf.length - n, at + n);
        if (got === 0) break;
        n += got;
      }
      return n === buf.length ? buf : buf.subarray(0, n);
    };
    const prefix = read(new Uint8Array(Math.min(size, 12 + MAX_HEADER)), 0);
    const header = parseNpyHeader(prefix, size, file);
    const data = read(new Uint8Array(header.dataBytes), header.dataOffset);
    if (data.length !== header.dataBytes)
      throw new RobustError(`${file}: truncated while reading (the file shrank)`);
    return { header, data: new DataView(data.buffer, data.byteOffset, data.byteLength) };
  } finally {
    fs.closeSync(fd);
  }
}

/** A reader of element i as a JS number (int64 beyond 2^53 loses precision; such labels are refused anyway). */
export function elementReader(a: NpyArray): (i: number) => number {
  const { kind, size, littleEndian: le } = a.header.dtype;
  const v = a.data;
  if (kind === 'f')
    return size === 4 ? (i) => v.getFloat32(i * 4, le) : (i) => v.getFloat64(i * 8, le);
  if (kind === 'b' || size === 1) return kind === 'i' ? (i) => v.getInt8(i) : (i) => v.getUint8(i);
  if (size === 2)
    return kind === 'i' ? (i) => v.getInt16(i * 2, le) : (i) => v.getUint16(i * 2, le);
  if (size === 4)
    return kind === 'i' ? (i) => v.getInt32(i * 4, le) : (i) => v.getUint32(i * 4, le);
  return kind === 'i'
    ? (i) => Number(v.getBigInt64(i * 8, le))
    : (i) => Number(v.getBigUint64(i * 8, le));
}
