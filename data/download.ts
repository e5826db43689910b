/** Downloads with a progress bar and an MD5 check; the final name appears only when verified. */
import fs from 'node:fs';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { RobustError } from '../util/errors.js';

export function md5File(file: string): string {
  return crypto.createHash('md5').update(fs.readFileSync(file)).digest('hex');
}

export async function download(url: string, target: string, md5?: string): Promise<void> {
  const tmp = `${target}.part`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new RobustError(`cannot download ${url}: ${(e as Error).message}; use --from FILE with a local copy`);
  }
  if (!res.ok || !res.body) throw new RobustError(`cannot download ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const bar = new cliProgress.SingleBar({ format: `${url.split('/').pop()} [{bar}] {percentage}% {value}/{total} bytes eta {eta}s` }, cliProgress.Presets.shades_classic);
  bar.start(total || 1, 0);
  const hash = crypto.createHash('md5');
  const out = fs.createWriteStream(tmp);
  let got = 0;
  try {
    for await (const chunk of Readable.fromWeb(res.body as never)) {
      hash.update(chunk as Buffer);
      got += (chunk as Buffer).length;
      bar.update(Math.min(got, total || got));
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', () => r(undefined)));
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  } catch (e) {
    out.destroy();
    fs.rmSync(tmp, { force: true });
    throw new RobustError(`download of ${url} failed: ${(e as Error).message}`);
  } finally {
    bar.stop();
  }
  const digest = hash.digest('hex');
  if (md5 && digest !== md5) {
    fs.rmSync(tmp, { force: true });
    throw new RobustError(`${url}: MD5 ${digest} does not match the expected ${md5}`);
  }
  fs.renameSync(tmp, target);
}
