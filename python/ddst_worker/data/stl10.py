"""STL-10 from its official binary files, resized to size x size (48 in the paper).

`path` is a directory holding stl10_binary/, or stl10_binary itself. Files: train_X.bin + train_y.bin
(5,000 images), test_X.bin + test_y.bin (8,000), unlabeled_X.bin (100,000). X files are uint8, 3x96x96 per
image, each channel stored column-major (reshaped to (-1, 3, 96, 96) and transposed (0, 1, 3, 2), as the
reference code reads them); y files hold one byte per image, classes 1..10 (here 0..9). Any whole number
of images is accepted; the label count must match.

Splits: "train", "test", "unlabeled", "train+unlabeled" (the default: all 105,000 images used for GAN
training). `labels` is -1 for the unlabeled images, and None for the "unlabeled" split.

X files are memory-mapped and stay uint8 (unlabeled_X.bin is 2.76 GB): a batch reads only its rows and is
converted on the device. Resizing: antialiased bilinear, torch.nn.functional.interpolate(mode="bilinear",
antialias=True, align_corners=False) -- the kernel torchvision's Resize uses on tensors, made to match
PIL's BILINEAR reduction that the reference's Resize applies to PIL images -- then rounded to whole levels
0..255 as torchvision does for uint8 images, then scaled to [-1, 1]. CPU and CUDA can round a rare pixel
one level apart.
"""

from pathlib import Path

import numpy as np

from .images import Images, ImageSource, Transform, bad, check_labels, n_, need_dir, read_bytes, split_of

IMAGE = 3 * 96 * 96
SPLITS = ("train+unlabeled", "train", "test", "unlabeled")


def read_x(path: Path) -> np.ndarray:
    what = f"STL-10 images: a whole number of {n_(IMAGE)}-byte images (3x96x96)"
    if not path.is_file():
        raise bad(path, what, "no such file" if not path.exists() else "not a regular file")
    size = path.stat().st_size
    if size == 0 or size % IMAGE:
        raise bad(path, what, f"{n_(size)} bytes")
    mm = np.memmap(path, np.uint8, mode="r", shape=(size // IMAGE, 3, 96, 96))
    return mm.transpose(0, 1, 3, 2)  # column-major planes -> [N, C, H, W]


def read_y(path: Path, count: int) -> np.ndarray:
    raw = read_bytes(path, f"STL-10 labels: {n_(count)} bytes, classes 1..10")
    if len(raw) != count:
        raise bad(path, f"{n_(count)} bytes (one label per image)", f"{n_(len(raw))}")
    y = np.frombuffer(raw, np.uint8).astype(np.int64)
    if count and not 1 <= y.min() <= y.max() <= 10:  # the file's own numbering, 1..10, in the message
        i = int(np.argmax((y < 1) | (y > 10)))
        raise bad(path, "labels 1..10", f"label {int(y[i])} at image {n_(i)}")
    return check_labels(path, y - 1, 10)


def load_split(directory: Path, split: str) -> Images:
    parts, labels = [], []
    for name in split.split("+"):
        x = read_x(directory / f"{name}_X.bin")
        parts.append(x)
        if name == "unlabeled":
            labels.append(np.full(len(x), -1, np.int64))
        else:
            labels.append(read_y(directory / f"{name}_y.bin", len(x)))
    return Images(parts, None if split == "unlabeled" else np.concatenate(labels))


def build(cfg: dict, seed: int, device: str) -> ImageSource:
    split = split_of(cfg, SPLITS)
    size = int(cfg["size"])
    if not 8 <= size <= 96:
        raise bad(Path(cfg["path"]), "size 8..96", str(size))
    path = Path(cfg["path"])
    directory = path / "stl10_binary" if (path / "stl10_binary").is_dir() else path
    need_dir(directory, "a directory holding stl10_binary (or its files)")
    load = lambda s: load_split(directory, s)  # noqa: E731
    return ImageSource("stl10", split, load(split), 10, seed, device, Transform(size=(size, size)),
                       reload=load, splits=SPLITS, hflip=bool(cfg["hflip"]))
