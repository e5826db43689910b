/**
 * A tar stream read chunk by chunk, keeping only chosen members, without Node: a page reads a
 * picked CIFAR-10 archive with it (the CLI uses node-tar, data/archive.ts). It refuses what the
 * CLI refuses — absolute or `..` paths, links leading out, a wanted name twice, members over the
 * cap, damaged headers — and says when the end-of-archive marker came, so the caller stops reading
 * there. Names come from ustar's prefix + name, a pax `path=` record or a GNU long name.
 */
import { unsafeEntry } from './tar-paths.js';

export interface TarScanLimits {
  /** Base names of the members to keep; any folder prefix matches, so each may appear only once. */
  wanted: ReadonlySet<string>;
  /** Base names whose size is still checked (members seen but not kept). */
  seen?: ReadonlySet<string>;
  maxMemberBytes: number;
  memberWhat: string;
  /** Largest sum of the members' declared sizes. */
  maxBytes: number;
  what: string;
}

const BLOCK = 512;
const TYPES: Record<string, string> = {
  '0': 'File',
  '\0': 'File',
  '7': 'File',
  '1': 'Link',
  '2': 'SymbolicLink',
  '5': 'Directory',
};

const text = (b: Uint8Array) => {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
};

/** An octal header number; null when it is not one (base-256 sizes are larger than any member here). */
function octal(b: Uint8Array): number | null {
  const s = text(b).trim();
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : s === '' ? 0 : null;
}

export class TarScan {
  /** The kept members by base name. */
  readonly members = new Map<string, Uint8Array>();
  /** Base names of every regular file met (kept or not) with their declared sizes. */
  readonly sizes = new Map<string, number>();
  ended = false;
  private header = new Uint8Array(BLOCK);
  private headerFill = 0;
  /** The entry whose data is being read: its bytes left (with padding), where kept data goes. */
  private left = 0;
  private pad = 0;
  private keep: { name: string; data: Uint8Array; at: number } | null = null;
  /** A pax or GNU long-name entry's data, collected for the next header. */
  private meta: { kind: 'pax' | 'gnu'; data: Uint8Array; at: number } | null = null;
  private nextName: string | null = null;
  private declared = 0;
  private readonly paths = new Map<string, string>();

  constructor(private readonly limits: TarScanLimits) {}

  /** Feeds the next bytes; throws a problem (a sentence, without the file name) when one is found. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.left > 0 || this.pad > 0) {
        const n = Math.min(chunk.length - at, this.left > 0 ? this.left : this.pad);
        const part = chunk.subarray(at, at + n);
        if (this.left > 0) {
          const sink = this.keep ?? this.meta;
          if (sink) {
            sink.data.set(part, sink.at);
            sink.at += n;
          }
          this.left -= n;
          if (this.left === 0) this.finishData();
        } else this.pad -= n;
        at += n;
        continue;
      }
      const n = Math.min(chunk.length - at, BLOCK - this.headerFill);
      this.header.set(chunk.subarray(at, at + n), this.headerFill);
      this.headerFill += n;
      at += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.readHeader(this.header);
      }
    }
  }

  /** Problems only the end can show: a stream cut before its end-of-archive marker or inside a member. */
  finish(): void {
    if (this.left > 0 && this.keep)
      throw new Error(
        `${this.keep.name} is truncated (${this.keep.at} of ${this.keep.data.length} bytes)`,
      );
    if (!this.ended)
      throw new Error('no end-of-archive marker: truncated, damaged or not a tar archive');
  }

  private finishData(): void {
    if (this.keep) this.members.set(this.keep.name, this.keep.data);
    this.keep = null;
    if (this.meta) {
      const data = this.meta.data;
      if (this.meta.kind === 'gnu') this.nextName = text(data);
      else {
        // pax records: "<length> <key>=<value>\n"
        for (const line of new TextDecoder().decode(data).split('\n')) {
          const m = /^\d+ path=(.*)$/s.exec(line);
          if (m) this.nextName = m[1];
        }
      }
      this.meta = null;
    }
  }

  private readHeader(h: Uint8Array): void {
    if (h.every((b) => b === 0)) {
      this.ended = true; // the end-of-archive marker: what follows is not part of the archive
      return;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const stored = octal(h.subarray(148, 156));
    if (stored !== sum)
      throw new Error('not a tar archive or a damaged one (a header checksum does not match)');
    const size = octal(h.subarray(124, 136));
    if (size === null) throw new Error('damaged tar data (a size that is not a number)');
    const flag = String.fromCharCode(h[156]);
    this.left = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (flag === 'x' || flag === 'L') {
      if (size > 1 << 20) throw new Error(`a ${size}-byte extended header: damaged tar data`);
      this.meta = { kind: flag === 'x' ? 'pax' : 'gnu', data: new Uint8Array(size), at: 0 };
      if (size === 0) this.finishData();
      return;
    }
    if (flag === 'g') return; // global pax header: nothing robust uses
    const ustar = text(h.subarray(257, 263)) === 'ustar';
    const prefix = ustar ? text(h.subarray(345, 500)) : '';
    const name = this.nextName ?? (prefix ? `${prefix}/` : '') + text(h.subarray(0, 100));
    this.nextName = null;
    const type = TYPES[flag] ?? 'Other';
    const link = text(h.subarray(157, 257));
    const unsafe = unsafeEntry(name, type, link);
    if (unsafe) throw new Error(unsafe);
    this.declared += size;
    if (this.declared > this.limits.maxBytes)
      throw new Error(
        `holds more than ${this.limits.maxBytes} bytes: larger than a ${this.limits.what}`,
      );
    const base = name.replace(/\/+$/, '').split('/').pop()!;
    const tracked = this.limits.wanted.has(base) || this.limits.seen?.has(base);
    if (!tracked) return;
    const before = this.paths.get(base);
    if (before !== undefined)
      throw new Error(
        `two members map to ${base} ('${before}' and '${name}'): which one is meant is ambiguous`,
      );
    this.paths.set(base, name);
    if (type !== 'File') return;
    if (size > this.limits.maxMemberBytes)
      throw new Error(
        `${name} is ${size} bytes, more than a ${this.limits.memberWhat} (${this.limits.maxMemberBytes})`,
      );
    this.sizes.set(base, size);
    if (this.limits.wanted.has(base)) {
      this.keep = { name: base, data: new Uint8Array(size), at: 0 };
      if (size === 0) this.finishData();
    }
  }
}
