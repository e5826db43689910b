/**
 * Downloads with a progress bar, retries that resume where the connection broke (HTTP Range), and
 * an MD5 check. Bytes go to `<target>.part`; the final name appears only once the checksum matches,
 * so a failed or corrupt download never looks like a finished one (and the next run resumes it).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { optionError, RobustError } from '../util/errors.js';
import { md5Of } from './md5.js';

function md5File(file: string): string {
  return md5Of(fs.readFileSync(file));
}

interface DownloadOptions {
  /** Attempts after the first (default 4). */
  retries?: number;
  /** Milliseconds before the first retry, doubled each time (default 1000). */
  backoffMs?: number;
  quiet?: boolean;
}

const sizeOf = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

/** One attempt: appends to `tmp` from its current size. Resolves when the server has sent everything. */
async function attempt(url: string, tmp: string, bar: cliProgress.SingleBar | null): Promise<void> {
  let have = sizeOf(tmp);
  const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  if (res.status === 416 && have > 0) return; // nothing left to send: the .part is complete
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  if (res.status !== 206 && have > 0) {
    fs.truncateSync(tmp, 0); // the server ignored the range: start over
    have = 0;
  }
  const length = Number(res.headers.get('content-length') ?? 0);
  const total = length ? have + length : 0;
  if (bar) {
    bar.setTotal(total || 1);
    bar.update(have);
  }
  const out = fs.createWriteStream(tmp, { flags: 'a' });
  let got = have;
  try {
    for await (const chunk of Readable.fromWeb(res.body as never)) {
      got += (chunk as Buffer).length;
      bar?.update(Math.min(got, total || got));
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', () => r(undefined)));
    }
  } finally {
    await new Promise<void>((resolve) => out.end(() => resolve()));
  }
  if (total && got < total) throw new Error(`connection closed after ${got} of ${total} bytes`);
}

export async function download(
  url: string,
  target: string,
  md5?: string,
  o: DownloadOptions = {},
): Promise<void> {
  const tmp = `${target}.part`;
  const retries = o.retries ?? 4;
  const quiet = o.quiet ?? !process.stderr.isTTY;
  const bar = quiet
    ? null
    : new cliProgress.SingleBar(
        {
          format: `${url.split('/').pop()} [{bar}] {percentage}% {value}/{total} bytes eta {eta}s`,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
  bar?.start(1, 0);
  let lastError = '';
  try {
    for (let i = 0; i <= retries; i++) {
      if (i > 0) {
        if (quiet)
          process.stderr.write(
            `download of ${url} interrupted (${lastError}); retry ${i}/${retries} from byte ${sizeOf(tmp)}\n`,
          );
        await new Promise((r) => setTimeout(r, (o.backoffMs ?? 1000) * 2 ** (i - 1)));
      }
      try {
        await attempt(url, tmp, bar);
        lastError = '';
        break;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
  } finally {
    bar?.stop();
  }
  if (lastError)
    throw optionError(
      (n) =>
        `cannot download ${url} (${lastError}) after ${retries + 1} attempts; run again to resume, or use ${n('from')} FILE with a local copy`,
    );
  const digest = md5File(tmp);
  if (md5 && digest !== md5) {
    fs.rmSync(tmp, { force: true });
    throw new RobustError(
      `${url}: MD5 ${digest} does not match the expected ${md5} (the partial file was removed)`,
    );
  }
  fs.renameSync(tmp, target);
}
