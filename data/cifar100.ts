/**
 * CIFAR-100 in the official binary layout: records of 1 coarse label + 1 fine label + 3×1024
 * planar RGB bytes, in cifar-100-binary/train.bin (50,000) and test.bin (10,000). `cifar100` uses
 * the 100 fine labels, `cifar100-coarse` the 20 superclasses; both read the same files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RobustError } from '../util/errors.js';
import type { DataSplit, ImageSet } from './dataset.js';
import { readTarMembers, type TarLimits } from './archive.js';
import { readRegularFile } from '../util/read-file.js';

/** The binary release and its MD5 as listed on the data set's page (torchvision downloads the pickled Python release instead). */
export const CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz';
export const CIFAR100_MD5 = '03b5dce01913d631647c71ecec9e9cb8';
export const CIFAR100_DIR = 'cifar-100-binary';
export const CIFAR100_FILES = { train: 'train.bin', test: 'test.bin' } as const;
const RECORD = 3074;
const CIFAR100_COUNTS = { train: 50_000, test: 10_000 };

/** fine_label_names.txt of the release: label i is line i. */
export const CIFAR100_FINE = [
  'apple',
  'aquarium_fish',
  'baby',
  'bear',
  'beaver',
  'bed',
  'bee',
  'beetle',
  'bicycle',
  'bottle',
  'bowl',
  'boy',
  'bridge',
  'bus',
  'butterfly',
  'camel',
  'can',
  'castle',
  'caterpillar',
  'cattle',
  'chair',
  'chimpanzee',
  'clock',
  'cloud',
  'cockroach',
  'couch',
  'crab',
  'crocodile',
  'cup',
  'dinosaur',
  'dolphin',
  'elephant',
  'flatfish',
  'forest',
  'fox',
  'girl',
  'hamster',
  'house',
  'kangaroo',
  'keyboard',
  'lamp',
  'lawn_mower',
  'leopard',
  'lion',
  'lizard',
  'lobster',
  'man',
  'maple_tree',
  'motorcycle',
  'mountain',
  'mouse',
  'mushroom',
  'oak_tree',
  'orange',
  'orchid',
  'otter',
  'palm_tree',
  'pear',
  'pickup_truck',
  'pine_tree',
  'plain',
  'plate',
  'poppy',
  'porcupine',
  'possum',
  'rabbit',
  'raccoon',
  'ray',
  'road',
  'rocket',
  'rose',
  'sea',
  'seal',
  'shark',
  'shrew',
  'skunk',
  'skyscraper',
  'snail',
  'snake',
  'spider',
  'squirrel',
  'streetcar',
  'sunflower',
  'sweet_pepper',
  'table',
  'tank',
  'telephone',
  'television',
  'tiger',
  'tractor',
  'train',
  'trout',
  'tulip',
  'turtle',
  'wardrobe',
  'whale',
  'willow_tree',
  'wolf',
  'woman',
  'worm',
];

/** coarse_label_names.txt with each superclass's five classes, as the data set's page groups them. */
const SUPERCLASSES: [string, string[]][] = [
  ['aquatic_mammals', ['beaver', 'dolphin', 'otter', 'seal', 'whale']],
  ['fish', ['aquarium_fish', 'flatfish', 'ray', 'shark', 'trout']],
  ['flowers', ['orchid', 'poppy', 'rose', 'sunflower', 'tulip']],
  ['food_containers', ['bottle', 'bowl', 'can', 'cup', 'plate']],
  ['fruit_and_vegetables', ['apple', 'mushroom', 'orange', 'pear', 'sweet_pepper']],
  ['household_electrical_devices', ['clock', 'keyboard', 'lamp', 'telephone', 'television']],
  ['household_furniture', ['bed', 'chair', 'couch', 'table', 'wardrobe']],
  ['insects', ['bee', 'beetle', 'butterfly', 'caterpillar', 'cockroach']],
  ['large_carnivores', ['bear', 'leopard', 'lion', 'tiger', 'wolf']],
  ['large_man-made_outdoor_things', ['bridge', 'castle', 'house', 'road', 'skyscraper']],
  ['large_natural_outdoor_scenes', ['cloud', 'forest', 'mountain', 'plain', 'sea']],
  ['large_omnivores_and_herbivores', ['camel', 'cattle', 'chimpanzee', 'elephant', 'kangaroo']],
  ['medium_mammals', ['fox', 'porcupine', 'possum', 'raccoon', 'skunk']],
  ['non-insect_invertebrates', ['crab', 'lobster', 'snail', 'spider', 'worm']],
  ['people', ['baby', 'boy', 'girl', 'man', 'woman']],
  ['reptiles', ['crocodile', 'dinosaur', 'lizard', 'snake', 'turtle']],
  ['small_mammals', ['hamster', 'mouse', 'rabbit', 'shrew', 'squirrel']],
  ['trees', ['maple_tree', 'oak_tree', 'palm_tree', 'pine_tree', 'willow_tree']],
  ['vehicles_1', ['bicycle', 'bus', 'motorcycle', 'pickup_truck', 'train']],
  ['vehicles_2', ['lawn_mower', 'rocket', 'streetcar', 'tank', 'tractor']],
];
export const CIFAR100_COARSE = SUPERCLASSES.map(([name]) => name);
/** The superclass of each fine label: every record's coarse byte must be its fine label's. */
export const FINE_TO_COARSE = CIFAR100_FINE.map((fine) =>
  SUPERCLASSES.findIndex(([, members]) => members.includes(fine)),
);

interface Cifar100Set {
  images: Uint8Array;
  fine: Uint8Array;
  coarse: Uint8Array;
  count: number;
}

/** Parses a train.bin or test.bin into NHWC pixels and both labels; `source` names the file in errors. */
export function parseCifar100(buf: Uint8Array, source: string): Cifar100Set {
  if (buf.length === 0 || buf.length % RECORD !== 0) {
    throw new RobustError(
      `${source}: ${buf.length} bytes is not a whole number of 3074-byte CIFAR-100 records (truncated or not CIFAR-100)`,
    );
  }
  const count = buf.length / RECORD;
  const images = new Uint8Array(count * 3072);
  const fine = new Uint8Array(count);
  const coarse = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const o = n * RECORD;
    const [c, f] = [buf[o], buf[o + 1]];
    if (f >= 100) throw new RobustError(`${source}: record ${n} has fine label ${f}, outside 0–99`);
    if (c !== FINE_TO_COARSE[f])
      throw new RobustError(
        `${source}: record ${n} has coarse label ${c}, but its fine label ${f} (${CIFAR100_FINE[f]}) is in superclass ${FINE_TO_COARSE[f]} (not CIFAR-100's labels)`,
      );
    coarse[n] = c;
    fine[n] = f;
    const dst = n * 3072;
    for (let p = 0; p < 1024; p++) {
      images[dst + p * 3] = buf[o + 2 + p];
      images[dst + p * 3 + 1] = buf[o + 1026 + p];
      images[dst + p * 3 + 2] = buf[o + 2050 + p];
    }
  }
  return { images, fine, coarse, count };
}

const MAX_MEMBER = CIFAR100_COUNTS.train * RECORD;
/** The official archive unpacks to 184.4 MB; 10% more leaves room for other tar writers' headers. */
const MAX_ARCHIVE_BYTES = Math.ceil((CIFAR100_COUNTS.train + CIFAR100_COUNTS.test) * RECORD * 1.1);
const ARCHIVE_LIMITS: TarLimits = {
  wanted: new Set(Object.values(CIFAR100_FILES)),
  maxMemberBytes: MAX_MEMBER,
  memberWhat: 'CIFAR-100 file',
  maxBytes: MAX_ARCHIVE_BYTES,
  what: 'CIFAR-100 archive',
};

/** train.bin and test.bin of a CIFAR-100 .tar.gz, and the archive's MD5 (nothing is extracted). */
export async function readCifar100Archive(
  file: string,
): Promise<{ files: Map<string, Uint8Array>; md5: string }> {
  const { members, md5 } = await readTarMembers(file, { ...ARCHIVE_LIMITS, md5: true });
  return { files: members, md5: md5! };
}

/** train.bin and test.bin of a folder: the official layout's cifar-100-binary/ inside it, or the folder itself. */
export function readCifar100Dir(dir: string): Map<string, Uint8Array> {
  const inner = path.join(dir, CIFAR100_DIR);
  const root = fs.existsSync(inner) ? inner : dir;
  const names = Object.values(CIFAR100_FILES);
  const twice = root === inner ? names.find((f) => fs.existsSync(path.join(dir, f))) : undefined;
  if (twice)
    throw new RobustError(
      `${dir}: holds ${twice} both directly and in ${CIFAR100_DIR}/: which one is meant is ambiguous`,
    );
  const found = new Map<string, Uint8Array>();
  for (const f of names) {
    const p = path.join(root, f);
    if (fs.existsSync(p))
      found.set(f, readRegularFile(p, { maxBytes: MAX_MEMBER, what: 'CIFAR-100 file' }));
  }
  return found;
}

/** Both files parsed (the check `robust data` runs before writing anything). */
export function parseCifar100Files(
  files: Map<string, Uint8Array>,
  source: string,
): { train: Cifar100Set; test: Cifar100Set } {
  const missing = Object.values(CIFAR100_FILES).filter((f) => !files.has(f));
  if (missing.length)
    throw new RobustError(`${source}: not a CIFAR-100 binary set (missing ${missing.join(', ')})`);
  return {
    train: parseCifar100(files.get(CIFAR100_FILES.train)!, `${source}: ${CIFAR100_FILES.train}`),
    test: parseCifar100(files.get(CIFAR100_FILES.test)!, `${source}: ${CIFAR100_FILES.test}`),
  };
}

/** Loads CIFAR-100 (fine or coarse labels) from a folder of train.bin/test.bin or from the official .tar.gz. */
export async function loadCifar100(
  source: string,
  labels: 'fine' | 'coarse' = 'fine',
): Promise<DataSplit> {
  if (!fs.existsSync(source)) throw new RobustError(`${source}: no such file or folder`);
  const files = fs.statSync(source).isDirectory()
    ? readCifar100Dir(source)
    : (await readCifar100Archive(source)).files;
  const { train, test } = parseCifar100Files(files, source);
  const set = (s: Cifar100Set): ImageSet => ({
    images: s.images,
    labels: s[labels],
    count: s.count,
    height: 32,
    width: 32,
    channels: 3,
  });
  return {
    name: labels === 'fine' ? 'cifar100' : 'cifar100-coarse',
    classes: labels === 'fine' ? CIFAR100_FINE : CIFAR100_COARSE,
    train: set(train),
    test: set(test),
    // the usual per-channel statistics of CIFAR-100's training images
    mean: [0.5071, 0.4865, 0.4409],
    std: [0.2673, 0.2564, 0.2762],
  };
}
