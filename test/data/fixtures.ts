/** Writers of the formats users bring (.npy, .npz, PNG, JPEG), for fixtures made inside the tests. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';

export type Descr =
  | '|u1'
  | '|i1'
  | '<i2'
  | '>i2'
  | '<i4'
  | '>i4'
  | '<i8'
  | '>i8'
  | '<u2'
  | '>u2'
  | '<u4'
  | '>u4'
  | '<u8'
  | '>u8'
  | '<f4'
  | '>f4'
  | '<f8'
  | '>f8'
  | '|b1';

/** Writes element values (as numbers) in the dtype `descr`. */
function encodeValues(descr: Descr, values: ArrayLike<number>): Uint8Array {
  const size = Number(descr.slice(2));
  const le = descr[0] !== '>';
  const buf = new Uint8Array(values.length * size);
  const v = new DataView(buf.buffer);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    const at = i * size;
    switch (descr.slice(1)) {
      case 'u1':
      case 'b1':
        v.setUint8(at, x);
        break;
      case 'i1':
        v.setInt8(at, x);
        break;
      case 'i2':
        v.setInt16(at, x, le);
        break;
      case 'u2':
        v.setUint16(at, x, le);
        break;
      case 'i4':
        v.setInt32(at, x, le);
        break;
      case 'u4':
        v.setUint32(at, x, le);
        break;
      case 'i8':
        v.setBigInt64(at, BigInt(x), le);
        break;
      case 'u8':
        v.setBigUint64(at, BigInt(x), le);
        break;
      case 'f4':
        v.setFloat32(at, x, le);
        break;
      case 'f8':
        v.setFloat64(at, x, le);
        break;
    }
  }
  return buf;
}

interface NpyOptions {
  version?: 1 | 2 | 3;
  /** Replaces the whole header dict text. */
  header?: string;
  fortran?: boolean;
}

/** An .npy file as numpy writes it: magic, version, header padded to 64 bytes, data. */
export function npy(
  descr: string,
  shape: number[],
  data: Uint8Array | { values: ArrayLike<number> },
  o: NpyOptions = {},
): Uint8Array {
  const body = data instanceof Uint8Array ? data : encodeValues(descr as Descr, data.values);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict =
    o.header ??
    `{'descr': '${descr}', 'fortran_order': ${o.fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const version = o.version ?? 1;
  const lenBytes = version === 1 ? 2 : 4;
  const pad = 64 - ((8 + lenBytes + dict.length + 1) % 64);
  const header = Buffer.from(dict + ' '.repeat(pad % 64) + '\n', version === 3 ? 'utf8' : 'latin1');
  const head = Buffer.alloc(8 + lenBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  return Buffer.concat([head, header, body]);
}

/** An .npz (zip) of members named `<key>.npy`; deflated like np.savez_compressed, or stored like np.savez. */
export function npz(members: Record<string, Uint8Array>, compressed = false): Uint8Array {
  return zipSync(
    Object.fromEntries(
      Object.entries(members).map(([k, v]) => [`${k}.npy`, [v, { level: compressed ? 6 : 0 }]]),
    ),
  );
}

/** An 8-bit PNG of gray (1), RGB (3) or RGBA (4) pixels, written by pngjs. */
export function png(
  width: number,
  height: number,
  channels: 1 | 3 | 4,
  pixels: Uint8Array,
): Buffer {
  const p = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) p.data[i * 4 + k] = pixels[i * channels + (channels === 1 ? 0 : k)];
    p.data[i * 4 + 3] = channels === 4 ? pixels[i * 4 + 3] : 255;
  }
  return PNG.sync.write(p, { colorType: channels === 1 ? 0 : channels === 3 ? 2 : 6 });
}

/** A baseline RGB JPEG (jpeg-js writes YCbCr, 4:2:0). */
export function jpegFile(width: number, height: number, rgb: Uint8Array, quality = 90): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let k = 0; k < 3; k++) data[i * 4 + k] = rgb[i * 3 + k];
    data[i * 4 + 3] = 255;
  }
  return jpeg.encode({ width, height, data }, quality).data;
}

/** Deterministic pixels: a smooth pattern plus the image index, so images differ and compress. */
export function pattern(n: number, seed = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 31 + ((i * i) >> 5)) % 256);
}

/**
 * Whether Debian's python3 has a module (numpy, PIL, torch): cross-checks run only then. With
 * `find`, the module is looked up without being imported (importing torch takes 2–4 s).
 */
export function hasPython(module: string, o: { find?: boolean } = {}): boolean {
  const code = o.find
    ? `import importlib.util, sys; sys.exit(importlib.util.find_spec(${JSON.stringify(module)}) is None)`
    : `import ${module}`;
  try {
    execFileSync('/usr/bin/python3', ['-c', code], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a Python snippet, returning its stdout bytes. */
export function python(code: string, input?: Uint8Array): Buffer {
  return execFileSync('/usr/bin/python3', ['-c', code], { input, maxBuffer: 1 << 28 });
}

export function write(file: string, bytes: Uint8Array | string): string {
  fs.writeFileSync(file, bytes);
  return file;
}

/** One PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A PNG written chunk by chunk, for what pngjs does not write (palette, 16-bit gray, tRNS):
 * `rows` are the packed scanlines without their filter bytes (filter 0 is added).
 */
export function rawPng(o: {
  width: number;
  height: number;
  colorType: number;
  depth: number;
  rows: Uint8Array;
  chunks?: [string, Uint8Array][];
  interlace?: boolean;
  idat?: Uint8Array;
}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(o.width, 0);
  ihdr.writeUInt32BE(o.height, 4);
  ihdr[8] = o.depth;
  ihdr[9] = o.colorType;
  ihdr[12] = o.interlace ? 1 : 0;
  const rowBytes = o.rows.length / o.height;
  const filtered = Buffer.alloc((rowBytes + 1) * o.height);
  for (let y = 0; y < o.height; y++)
    filtered.set(o.rows.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(o.chunks ?? []).map(([t, d]) => chunk(t, d)),
    chunk('IDAT', o.idat ?? zlib.deflateSync(filtered)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
