/**
 * A folder of images a page was given, as a FolderSource for the folder rules (data/folder.ts):
 * the files of `<input type=file webkitdirectory>` (each with its `webkitRelativePath`) or of a
 * dropped folder (walked with `folderFilesFromEntry`). Web APIs only; runs in Node too. A picked
 * folder has no links, so no loops; a browser lists no empty folders for webkitdirectory.
 */
import { RobustError } from '../util/errors.js';
import { readFolder, type FolderLoadOptions, type FolderSource } from './folder.js';
import type { DataSplit } from './dataset.js';
import { DATA_LIMITS } from './limits.js';

/** One file of a picked folder: its path from the folder's name down ('pets/cat/1.png') and its contents. */
export interface FolderFile {
  path: string;
  file: Blob;
}

/** The folder the files were picked from, as a tree; their paths must share one top folder. */
export function filesFolderSource(files: readonly FolderFile[]): FolderSource {
  if (files.length === 0)
    throw new RobustError(
      'the folder picked holds no files (a browser does not list empty folders)',
    );
  const blobs = new Map<string, Blob>();
  const children = new Map<string, Set<string>>();
  const root = files[0].path.split('/')[0];
  for (const { path: p, file } of files) {
    const parts = p.split('/');
    if (
      parts.length < 2 ||
      parts[0] !== root ||
      parts.some((s) => s === '' || s === '.' || s === '..')
    )
      throw new RobustError(
        `${p}: not a file of the folder ${root}/ (each path is the folder's name, then the file's path in it)`,
      );
    if (blobs.has(p)) throw new RobustError(`${p}: given twice`);
    blobs.set(p, file);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (blobs.has(dir)) throw new RobustError(`${dir}: both a file and a folder`);
      let names = children.get(dir);
      if (!names) children.set(dir, (names = new Set()));
      names.add(parts[i]);
    }
  }
  for (const dir of children.keys())
    if (blobs.has(dir)) throw new RobustError(`${dir}: both a file and a folder`);
  return {
    root,
    listsEmptyFolders: false,
    join: (dir, name) => `${dir}/${name}`,
    dirname: (file) => file.slice(0, Math.max(0, file.lastIndexOf('/'))),
    exists: async (p) => blobs.has(p) || children.has(p),
    isDirectory: async (p) => {
      if (children.has(p)) return true;
      if (blobs.has(p)) return false;
      throw new RobustError(`${p}: cannot read (not among the files picked)`);
    },
    list: async (dir) => {
      const names = children.get(dir);
      if (!names) throw new RobustError(`${dir}: cannot list the folder (not a folder picked)`);
      return [...names];
    },
    realpath: async (dir) => dir,
    read: async (file, limits) => {
      const blob = blobs.get(file);
      if (!blob) throw new RobustError(`${file}: no such file`);
      if (blob.size > limits.maxBytes)
        throw new RobustError(
          `${file}: ${blob.size} bytes, more than a ${limits.what} can be (${limits.maxBytes} at most)`,
        );
      try {
        return new Uint8Array(await blob.arrayBuffer());
      } catch (e) {
        // a file changed or removed on disk after it was picked
        throw new RobustError(`${file}: cannot read (${(e as Error).message})`);
      }
    },
  };
}

/** Loads a picked folder as `folder:NAME` with the rules of `robust eval --data folder:PATH`. */
export function loadFolderFiles(
  files: readonly FolderFile[],
  o: FolderLoadOptions,
): Promise<DataSplit> {
  return readFolder(filesFolderSource(files), o);
}

/** The parts of the File and Directories Entries API a dropped folder is walked with. */
export interface EntryLike {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
}
export interface FileEntryLike extends EntryLike {
  file(ok: (f: File) => void, fail: (e: unknown) => void): void;
}
export interface DirectoryEntryLike extends EntryLike {
  createReader(): {
    readEntries(ok: (entries: EntryLike[]) => void, fail: (e: unknown) => void): void;
  };
}

const failed = (what: string, e: unknown) =>
  new RobustError(`${what}: cannot read (${(e as Error)?.message ?? String(e)})`);

/**
 * The files under a dropped folder, with paths from its name down, for `loadFolderFiles`. Hidden
 * folders are not walked (the rules skip them); more files or folder levels than robust reads stop
 * the walk in one line.
 */
export async function folderFilesFromEntry(root: DirectoryEntryLike): Promise<FolderFile[]> {
  if (!root.isDirectory)
    throw new RobustError(`${root.name}: not a folder (drop a folder of class folders)`);
  const out: FolderFile[] = [];
  const walk = async (dir: DirectoryEntryLike, at: string, depth: number): Promise<void> => {
    if (depth > DATA_LIMITS.depth + 2)
      throw new RobustError(`${at}: more than ${DATA_LIMITS.depth} folder levels`);
    const reader = dir.createReader();
    for (;;) {
      // readEntries answers in batches (100 in Chromium) until an empty one
      const batch = await new Promise<EntryLike[]>((ok, fail) =>
        reader.readEntries(ok, (e) => fail(failed(at, e))),
      );
      if (batch.length === 0) return;
      for (const e of batch) {
        const p = `${at}/${e.name}`;
        if (e.isDirectory) {
          if (!e.name.startsWith('.')) await walk(e as DirectoryEntryLike, p, depth + 1);
        } else if (e.isFile) {
          const file = await new Promise<File>((ok, fail) =>
            (e as FileEntryLike).file(ok, (err) => fail(failed(p, err))),
          );
          out.push({ path: p, file });
          if (out.length > 2 * DATA_LIMITS.images)
            throw new RobustError(
              `${root.name}: more than ${2 * DATA_LIMITS.images} files, more than robust reads`,
            );
        }
      }
    }
  };
  await walk(root, root.name, 0);
  return out;
}
