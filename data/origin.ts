/**
 * One line on where a local copy (`robust data --from`) came from: the official release, when its
 * checksum says so, or an unknown source whose contents were checked but whose origin was not.
 */
// Node-free: the page says the same of a picked archive.

/** For an archive whose MD5 is `md5`; `official` is the MD5 the download checks. */
export function archiveOrigin(file: string, md5: string, official: string): string {
  return md5 === official
    ? `${file}: verified: the official archive (MD5 ${md5})`
    : `${file}: not the official archive (md5 ${md5}): its members were checked but its origin is not`;
}

/** For a folder of files; `md5s` and `official` map file names to MD5s. */
export function filesOrigin(
  dir: string,
  md5s: Record<string, string>,
  official: Record<string, string>,
): string {
  const differ = Object.keys(official).filter((f) => md5s[f] !== official[f]);
  return differ.length === 0
    ? `${dir}: verified: the official files (MD5 of all ${Object.keys(official).length} match)`
    : `${dir}: not the official files (md5 differs for ${differ.join(', ')}): their contents were checked but their origin is not`;
}

/** For a folder of CIFAR-10 batches: only the archive has an official checksum. */
export const folderOrigin = (dir: string) =>
  `${dir}: a folder, not the official archive: its batch files were checked but their origin is not`;
