/** `folder:PATH` on disk: the folder rules of data/folder.ts reading through Node's file system. */
import fs from 'node:fs';
import path from 'node:path';
import { RobustError } from '../util/errors.js';
import { readRegularFile } from '../util/read-file.js';
import type { DataSplit } from './dataset.js';
import { readFolder, type FolderLoadOptions, type FolderSource } from './folder.js';

/** The folder at `root` (made absolute) as the rules read it: links followed, regular files only. */
export function nodeFolderSource(root: string): FolderSource {
  return {
    root: path.resolve(root),
    join: (dir, name) => path.join(dir, name),
    dirname: (file) => path.dirname(file),
    exists: async (p) => fs.existsSync(p),
    isDirectory: async (p) => {
      try {
        return fs.statSync(p).isDirectory(); // follows links, as ImageFolder does
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new RobustError(
          `${p}: cannot read (${code === 'ELOOP' ? 'a symbolic link loop' : code === 'ENOENT' ? 'a dangling symbolic link' : (code ?? (e as Error).message)})`,
        );
      }
    },
    list: async (dir) => {
      try {
        return fs.readdirSync(dir);
      } catch (e) {
        throw new RobustError(
          `${dir}: cannot list the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        );
      }
    },
    realpath: async (dir) => fs.realpathSync(dir),
    read: async (file, limits) => readRegularFile(file, limits),
  };
}

/** Loads `folder:PATH` (layouts: data/folder.ts); notes go to stderr unless `o.note` takes them. */
export function loadFolder(root: string, o: Partial<FolderLoadOptions> = {}): Promise<DataSplit> {
  return readFolder(nodeFolderSource(root), {
    ...o,
    note: o.note ?? ((line: string) => process.stderr.write(`${line}\n`)),
  });
}
