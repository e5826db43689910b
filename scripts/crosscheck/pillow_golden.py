"""Golden files for the Pillow cross-checks (test/data/pillow.test.ts): what Pillow makes of small
deterministic inputs, stored so that the tests need no Python (CI has no Pillow).

- JPEG decoding: synthetic images (seeded gradients, flat rectangles and noise) written by Pillow
  as JPEG in the variants robust must decode as Pillow does (4:2:0, 4:2:2, 4:4:4, progressive,
  gray, EXIF-rotated, optimized Huffman tables, quality 5 and 100, odd and tiny sizes), and the
  bytes Image.open(f).tobytes() gives for each (EXIF orientation not applied, as Pillow does not).
- Resizing: raw 8-bit images (seeded noise, 0/255 noise, synthetic pictures) and the bytes of
  Image.resize((W, H), Image.BILINEAR) of each, plus convert('L') of each RGB one. A set of several
  images is resized image by image.

Outputs up to RAW_MAX bytes are stored as files; larger ones as their SHA-256 only. manifest.json
lists every case and the Pillow / libjpeg-turbo versions. The folder is written beside OUT and
renamed into place (an interrupted run leaves the old fixtures).

The fixtures in test/fixtures/pillow/ were made on 2026-12-01 with Debian 12's python3-pil 9.4.0
(libjpeg-turbo 2.1.5, python 3.11) by

    /usr/bin/python3 scripts/crosscheck/pillow_golden.py test/fixtures/pillow

Another Pillow or libjpeg-turbo may write other JPEG bytes; the test reads the inputs and outputs
stored together, so regenerating keeps them consistent, and where Pillow is present the test also
runs this script and checks our output against the Pillow there.
usage: python3 pillow_golden.py OUT_DIR"""
import hashlib, json, os, random, shutil, sys
import PIL
from PIL import Image, features

RAW_MAX = 4096

# name, (width, height), seed, gray, Pillow save options
JPEGS = [
    ("420", (37, 29), 1, False, dict(quality=85, subsampling="4:2:0")),
    ("422", (37, 29), 2, False, dict(quality=90, subsampling="4:2:2")),
    ("444", (37, 29), 3, False, dict(quality=95, subsampling="4:4:4")),
    ("progressive", (37, 29), 4, False, dict(quality=75, progressive=True)),
    ("progressive-444", (37, 29), 5, False, dict(quality=80, progressive=True, subsampling="4:4:4")),
    ("gray", (37, 29), 6, True, dict(quality=90)),
    ("gray-progressive", (37, 29), 7, True, dict(quality=70, progressive=True)),
    ("exif-rotated", (37, 29), 8, False, dict(quality=90, exif="orientation 6")),
    ("optimized", (37, 29), 9, False, dict(quality=85, optimize=True)),
    ("q100", (37, 29), 10, False, dict(quality=100, subsampling="4:2:0")),
    ("q5", (37, 29), 11, False, dict(quality=5)),
    ("422-17x3", (17, 3), 12, False, dict(quality=90, subsampling="4:2:2")),
    ("420-1x1", (1, 1), 13, False, dict(quality=90)),
    ("420-83x61", (83, 61), 14, False, dict(quality=50)),
]

# count, height, width, channels, to height, to width, content
RESIZES = [
    (1, 7, 9, 3, 3, 4, "noise"),
    (1, 5, 5, 1, 13, 11, "noise"),
    (1, 32, 32, 3, 224, 224, "picture"),  # CIFAR to an ImageNet model
    (1, 48, 40, 3, 17, 31, "picture"),
    (1, 28, 28, 1, 32, 32, "picture"),  # MNIST to a CIFAR model
    (1, 10, 3, 3, 10, 7, "noise"),
    (1, 1, 1, 3, 5, 2, "noise"),
    (1, 64, 64, 1, 7, 96, "binary"),
    (3, 28, 28, 1, 14, 14, "picture"),
    (2, 9, 13, 3, 9, 13, "noise"),  # same size: unchanged
    (1, 1, 120, 1, 1, 7, "binary"),
    (1, 120, 1, 3, 9, 1, "noise"),
    (1, 3, 3, 3, 61, 47, "binary"),
    (1, 45, 60, 1, 1, 1, "noise"),
    (1, 40, 40, 3, 39, 41, "binary"),
]
# and small random ones: every ratio in between, shrinking one way and enlarging the other
_shapes = random.Random(20261201)
RESIZES += [(_shapes.choice([1, 2]), _shapes.randint(1, 16), _shapes.randint(1, 16), _shapes.choice([1, 3]), _shapes.randint(1, 24), _shapes.randint(1, 24), _shapes.choice(["noise", "binary", "picture"])) for _ in range(12)]


def picture(w, h, seed, noise=24):
    """A diagonal colour gradient under four flat rectangles, plus uniform noise: flat areas, edges and texture."""
    rng = random.Random(seed)
    rects = [(rng.randrange(w), rng.randrange(h), rng.randrange(1, w // 2 + 2), rng.randrange(1, h // 2 + 2), [rng.randrange(256) for _ in range(3)]) for _ in range(4)]
    px = bytearray()
    for y in range(h):
        for x in range(w):
            c = [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 255 // max(w + h - 2, 1)]
            for rx, ry, rw, rh, col in rects:
                if rx <= x < rx + rw and ry <= y < ry + rh:
                    c = col
            px += bytes(min(255, max(0, v + rng.randint(-noise, noise))) for v in c)
    return Image.frombytes("RGB", (w, h), bytes(px))


def content(kind, w, h, c, seed):
    rng = random.Random(seed)
    if kind == "picture":
        im = picture(w, h, seed)
        return im if c == 3 else im.convert("L")
    n = w * h * c
    data = bytes(rng.randrange(256) for _ in range(n)) if kind == "noise" else bytes(255 * rng.randrange(2) for _ in range(n))
    return Image.frombytes("RGB" if c == 3 else "L", (w, h), data)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def output(folder, name, data):
    """The manifest entry of one output: its SHA-256, and its file when small enough to store."""
    entry = {"bytes": len(data), "sha256": sha256(data)}
    if len(data) <= RAW_MAX:
        open(os.path.join(folder, name), "wb").write(data)
        entry["file"] = name
    return entry


def make(folder):
    manifest = {
        "made_by": "scripts/crosscheck/pillow_golden.py",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "jpeg": [],
        "resize": [],
    }
    for name, (w, h), seed, gray, options in JPEGS:
        im = picture(w, h, seed)
        if gray:
            im = im.convert("L")
        opts = dict(options)
        if opts.get("exif") == "orientation 6":  # "rotate 90° clockwise to display"
            ex = Image.Exif()
            ex[0x0112] = 6
            opts["exif"] = ex.tobytes()
        path = os.path.join(folder, name + ".jpg")
        im.save(path, "JPEG", **opts)
        decoded = Image.open(path)
        decoded.load()
        assert decoded.mode in ("L", "RGB"), decoded.mode
        manifest["jpeg"].append({
            "file": name + ".jpg",
            "saved_with": {k: v for k, v in options.items()},
            "width": decoded.width,
            "height": decoded.height,
            "mode": decoded.mode,
            "pixels": output(folder, name + ".pixels", decoded.tobytes()),
        })
    for k, (count, h, w, c, H, W, kind) in enumerate(RESIZES):
        images = [content(kind, w, h, c, 1000 * k + i) for i in range(count)]
        case = {"input": f"resize-{k}.in", "count": count, "height": h, "width": w, "channels": c, "to_height": H, "to_width": W, "content": kind}
        open(os.path.join(folder, case["input"]), "wb").write(b"".join(im.tobytes() for im in images))
        case["resized"] = output(folder, f"resize-{k}.out", b"".join(im.resize((W, H), Image.BILINEAR).tobytes() for im in images))
        if c == 3:
            case["gray"] = output(folder, f"resize-{k}.gray", b"".join(im.convert("L").tobytes() for im in images))
        manifest["resize"].append(case)
    # one case a line: short, and a regenerated case shows as a one-line diff
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items() if not isinstance(v, list)]
    lines += [f" {json.dumps(k)}: [\n" + ",\n".join("  " + json.dumps(c) for c in v) + "\n ]" for k, v in manifest.items() if isinstance(v, list)]
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.rsplit("\n", 1)[-1])
    out = os.path.abspath(sys.argv[1])
    tmp = f"{out}.tmp-{os.getpid()}"
    os.makedirs(tmp)
    try:
        make(tmp)
        if os.path.exists(out):
            old = f"{out}.old.tmp-{os.getpid()}"
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
