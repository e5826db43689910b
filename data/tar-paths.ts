/** Tar entries robust refuses, for node-tar (data/archive.ts) and the page's reader (data/tar-scan.ts). */

/** Why an archive entry is refused: an absolute path, a `..` segment, or a link leading out. */
export function unsafeEntry(entryPath: string, type: string, linkpath?: string): string | null {
  const bad = (p: string) =>
    p.startsWith('/') || /^[a-zA-Z]:/.test(p) || p.split(/[\\/]/).includes('..');
  if (bad(entryPath)) return `unsafe path '${entryPath}'`;
  if ((type === 'SymbolicLink' || type === 'Link') && linkpath !== undefined && bad(linkpath))
    return `link '${entryPath}' points outside the archive ('${linkpath}')`;
  return null;
}
