/**
 * Decoding one PNG or JPEG file to 8-bit gray or RGB pixels. The header is read first, so an image
 * over the pixel cap is refused before its pixels are allocated. PNG via pngjs (palette, 1–16-bit
 * and interlaced images; 16-bit is scaled to 8 bits as round(v·255/65535)). JPEG via MozJPEG
 * compiled to wasm (@jsquash/jpeg): libjpeg-turbo's decoder, the one Pillow uses, so the pixels
 * equal those torchvision's loader gives, bit for bit (pure-JS jpeg-js upsamples chroma by nearest
 * neighbour: 4 levels off on average, up to 74, on 4:2:0 files). Baseline and progressive, gray or
 * YCbCr; CMYK, 12-bit and lossless/arithmetic/hierarchical files are refused, and so is any file
 * libjpeg warns about (a truncated one would otherwise come out with gray blocks). EXIF orientation
 * is not applied, as Pillow does not apply it. Alpha is dropped only when every pixel is opaque.
 * Node-free: the page decodes with the same code (pngjs's browser build, the same MozJPEG wasm).
 */
import { Unzlib } from 'fflate';
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import { initEmscriptenModule } from '@jsquash/jpeg/utils.js';
import { RobustError } from '../util/errors.js';
import { DATA_LIMITS } from './limits.js';
import { mozjpegWasm, readPng } from '../util/platform.js';

export interface DecodedImage {
  width: number;
  height: number;
  channels: 1 | 3;
  /** height × width × channels bytes, row-major. */
  data: Uint8Array;
}

type ImageFormat = 'png' | 'jpeg';

/** Formats robust decodes, by extension (lower case). */
const DECODED: Record<string, ImageFormat> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg' };
/** Other image extensions torchvision's ImageFolder loads: refused by name rather than skipped silently. */
const OTHER_IMAGES = ['.bmp', '.gif', '.ppm', '.pgm', '.pbm', '.tif', '.tiff', '.webp'];

/** 'png' / 'jpeg' for the files robust reads, 'other' for image files it cannot, null for anything else. */
export function imageFormat(name: string): ImageFormat | 'other' | null {
  const dot = name.lastIndexOf('.');
  const ext = dot < 0 ? '' : name.slice(dot).toLowerCase();
  return DECODED[ext] ?? (OTHER_IMAGES.includes(ext) ? 'other' : null);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function checkPixels(width: number, height: number, file: string): void {
  if (width === 0 || height === 0)
    throw new RobustError(`${file}: an image of ${width}×${height} pixels`);
  if (width * height > DATA_LIMITS.pixels)
    throw new RobustError(
      `${file}: ${width}×${height} pixels, more than robust reads (${DATA_LIMITS.pixels} per image)`,
    );
}

class InflateCap extends Error {}

/** Width, height and colour type from IHDR; for interlaced files, a bounded inflate of the IDAT data (pngjs inflates those without a cap). */
function checkPng(buf: Uint8Array, file: string): void {
  if (buf.length < 33 || PNG_SIGNATURE.some((b, i) => buf[i] !== b))
    throw new RobustError(
      `${file}: not a PNG file (wrong signature${buf.length < 33 ? ' or truncated' : ''})`,
    );
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(8) !== 13 || String.fromCharCode(...buf.subarray(12, 16)) !== 'IHDR')
    throw new RobustError(`${file}: damaged PNG (no IHDR chunk first)`);
  const width = v.getUint32(16);
  const height = v.getUint32(20);
  checkPixels(width, height, file);
  if (buf[28] !== 1) return;
  const depth = buf[24];
  const samples = [1, 0, 3, 1, 2, 0, 4][buf[25]] ?? 4;
  const most = (Math.ceil((width * samples * depth) / 8) + 1) * height * 2 + 1024; // every pass's rows, filter bytes included
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 12 <= buf.length;) {
    const len = v.getUint32(at);
    const type = String.fromCharCode(...buf.subarray(at + 4, at + 8));
    if (type === 'IDAT') idat.push(buf.subarray(at + 8, Math.min(buf.length, at + 8 + len)));
    if (type === 'IEND') break;
    at += 12 + len;
  }
  // a streaming inflate that stops at the cap; fed 4 KiB at a time, so one push (deflate expands
  // at most ~1032:1) never produces more than ~4 MiB before the count is checked
  let out = 0;
  const inflater = new Unzlib(() => undefined);
  inflater.ondata = (chunk) => {
    out += chunk.length;
    if (out > most) throw new InflateCap();
  };
  try {
    for (const part of idat)
      for (let at = 0; at < part.length; at += 4096) inflater.push(part.subarray(at, at + 4096));
  } catch (e) {
    if (e instanceof InflateCap)
      throw new RobustError(
        `${file}: its pixel data inflates to more than ${width}×${height} pixels need (damaged or hostile)`,
      );
    // other inflate problems are pngjs's to report below
  }
}

function decodePng(buf: Uint8Array, file: string): DecodedImage {
  checkPng(buf, file);
  let png: { width: number; height: number; colorType: number; data: Uint8Array };
  try {
    png = readPng(buf);
  } catch (e) {
    throw new RobustError(`${file}: not a readable PNG (${(e as Error).message})`);
  }
  const { width, height, data } = png;
  const channels = png.colorType === 0 || png.colorType === 4 ? 1 : 3;
  const n = width * height;
  for (let i = 0; i < n; i++) {
    if (data[i * 4 + 3] !== 255)
      throw new RobustError(
        `${file}: has transparent pixels (alpha ${data[i * 4 + 3]} at x ${i % width}, y ${Math.floor(i / width)}): robust reads opaque gray or RGB images; flatten it first`,
      );
  }
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < channels; k++) out[i * channels + k] = data[i * 4 + k];
  return { width, height, channels, data: out };
}

/** The frame header (SOFn) of a JPEG: size, components and coding, without decoding. */
function jpegFrame(
  buf: Uint8Array,
  file: string,
): { width: number; height: number; components: number } {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8)
    throw new RobustError(`${file}: not a JPEG file (no SOI marker)`);
  let at = 2;
  while (at + 4 <= buf.length) {
    if (buf[at] !== 0xff) throw new RobustError(`${file}: damaged JPEG (no marker at byte ${at})`);
    const marker = buf[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const len = (buf[at + 2] << 8) | buf[at + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 10 > buf.length) break;
      if (marker > 0xc2)
        throw new RobustError(
          `${file}: a lossless, hierarchical or arithmetic-coded JPEG (SOF${marker - 0xc0}): robust reads baseline and progressive JPEGs`,
        );
      const precision = buf[at + 4];
      const height = (buf[at + 5] << 8) | buf[at + 6];
      const width = (buf[at + 7] << 8) | buf[at + 8];
      const components = buf[at + 9];
      if (precision !== 8)
        throw new RobustError(`${file}: a ${precision}-bit JPEG: robust reads 8-bit JPEGs`);
      checkPixels(width, height, file);
      if (components !== 1 && components !== 3)
        throw new RobustError(
          `${file}: a JPEG with ${components} colour components${components === 4 ? ' (CMYK)' : ''}: robust reads gray and RGB JPEGs`,
        );
      return { width, height, components };
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image or start of scan before any frame header
    at += 2 + len;
  }
  throw new RobustError(`${file}: damaged or truncated JPEG (no frame header)`);
}

/** What libjpeg prints while decoding (warnings on corrupt data): collected per image. */
const jpegWarnings: string[] = [];
interface Mozjpeg {
  decode(
    data: Uint8Array,
    preserveOrientation: boolean,
  ): { width: number; height: number; data: Uint8ClampedArray } | null;
}
let mozjpeg: Promise<Mozjpeg> | undefined;

/** The decoder, compiled once (from the package's file in Node, beside the bundle in a page); its decode is synchronous. */
function mozjpegModule(): Promise<Mozjpeg> {
  mozjpeg ??= (async () => {
    const sink = (line: string) => jpegWarnings.push(String(line));
    return (await initEmscriptenModule(mozjpegFactory, await mozjpegWasm(), {
      print: sink,
      printErr: sink,
    } as never)) as unknown as Mozjpeg;
  })();
  return mozjpeg;
}

async function decodeJpeg(buf: Uint8Array, file: string): Promise<DecodedImage> {
  const frame = jpegFrame(buf, file);
  const decoder = await mozjpegModule();
  // from here to the warnings check nothing awaits: another image's warnings cannot mix in
  jpegWarnings.length = 0;
  let img: { width: number; height: number; data: Uint8ClampedArray } | null;
  try {
    img = decoder.decode(buf, false); // false: EXIF orientation not applied, as Pillow
  } catch (e) {
    throw new RobustError(`${file}: not a readable JPEG (${(e as Error).message})`);
  }
  if (!img) throw new RobustError(`${file}: not a readable JPEG`);
  if (jpegWarnings.length)
    throw new RobustError(
      `${file}: damaged or truncated JPEG (libjpeg: ${jpegWarnings[0].trim()})`,
    );
  if (img.width !== frame.width || img.height !== frame.height)
    throw new RobustError(
      `${file}: damaged JPEG (decoded ${img.width}×${img.height}, header says ${frame.width}×${frame.height})`,
    );
  // RGBA out; a gray JPEG's one component is repeated into R, G and B
  const n = img.width * img.height;
  const c = frame.components === 1 ? 1 : 3;
  const data = new Uint8Array(n * c);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) data[i * c + k] = img.data[i * 4 + k];
  return { width: img.width, height: img.height, channels: c, data };
}

/** Decodes `bytes` (the contents of `file`, named in errors) as PNG or JPEG, whichever its first bytes say (not its extension). */
export async function decodeImage(bytes: Uint8Array, file: string): Promise<DecodedImage> {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b))
    return decodePng(bytes, file);
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpeg(bytes, file);
  throw new RobustError(
    `${file}: neither a PNG nor a JPEG file (${bytes.length === 0 ? 'empty' : 'its first bytes are neither signature'})`,
  );
}
