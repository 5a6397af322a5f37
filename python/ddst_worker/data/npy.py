"""A .npy array (np.load with allow_pickle=False, memory-mapped).

Layouts, by number of dimensions:
  N x 2          points (toy 2-D data), any real dtype, sampled as float32.
  N x H x W      one-channel images.
  N x C x H x W  images, when axis 1 is 1 or 3 (channels first wins when both axis 1 and axis 3 are);
  N x H x W x C  images, when axis 1 is not 1 or 3 but axis 3 is.
Images are uint8 (0..255, scaled to [-1, 1] per batch as x / 127.5 - 1) or floating point already in
[-1, 1] (checked over the whole array: NaN, infinities or values outside are an error, and so is an array
with no value below 0, which is images scaled to [0, 1]). Other dtypes are refused. Float images come back
from `arrays()` as uint8 (round((x + 1) * 127.5)). No labels.
"""

from pathlib import Path

import numpy as np

from .images import Images, ImageSource, PointSource, bad, n_

MAGIC = b"\x93NUMPY"


def describe(a: np.ndarray) -> str:
    return f"{a.dtype} array of shape ({', '.join(map(str, a.shape))})"


def load(path: Path) -> np.ndarray:
    what = "a .npy array (N x C x H x W, N x H x W x C, N x H x W, or N x 2)"
    if not path.is_file():
        raise bad(path, what, "no such file" if not path.exists() else "not a regular file")
    with open(path, "rb") as f:
        head = f.read(6)
    if head != MAGIC:
        found = "a .npz/zip archive" if head[:4] == b"PK\x03\x04" else f"magic {head!r}"
        raise bad(path, f"a .npy file (magic {MAGIC!r})", found)
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # object arrays (would need pickle), truncated data, bad header
        raise bad(path, what, f"an unreadable .npy ({type(e).__name__}: {e})")
    if a.dtype.hasobject or a.dtype.names is not None:
        raise bad(path, "a numeric array", describe(a))
    return a


def check_float_range(path: Path, a: np.ndarray) -> None:
    flat = a.reshape(len(a), -1)
    lowest, highest = np.inf, -np.inf
    for i in range(0, len(a), 4096):
        c = np.asarray(flat[i:i + 4096], np.float64)
        if not np.isfinite(c).all():
            raise bad(path, "float values in [-1, 1]", f"NaN or infinity in rows {n_(i)}..")
        lo, hi = c.min(), c.max()
        if lo < -1 or hi > 1:
            raise bad(path, "float values in [-1, 1] (or uint8 0..255)",
                      f"values from {lo:g} to {hi:g} in rows {n_(i)}..")
        lowest, highest = min(lowest, lo), max(highest, hi)
    # In [-1, 1] black is -1: a whole image set without one value below 0 is images scaled to [0, 1], which
    # would train G toward grey pictures and be read back (for FID) as levels 128..255.
    if lowest >= 0:
        raise bad(path, "float images in [-1, 1] (x / 127.5 - 1 for 8-bit levels)",
                  f"values from {lowest:g} to {highest:g}, none below 0: images scaled to [0, 1]? convert them with "
                  "x * 2 - 1, or save the 8-bit levels as uint8")


def build(cfg: dict, seed: int, device: str):
    path = Path(cfg["path"])
    a = load(path)
    if a.ndim == 0 or len(a) == 0:
        raise bad(path, "at least one sample", describe(a))
    if a.ndim == 2:
        if a.shape[1] != 2 or a.dtype.kind not in "fiu":
            raise bad(path, "N x 2 points of real numbers (or images of 3 or 4 dimensions)", describe(a))
        points = np.asarray(a, np.float32)
        if not np.isfinite(points).all():
            raise bad(path, "finite points", "NaN or infinity")
        return PointSource(points, seed, device)
    if 0 in a.shape:
        raise bad(path, "images of at least 1x1 pixels", describe(a))
    if a.ndim == 3:
        images = a[:, None]
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        images = a
    elif a.ndim == 4 and a.shape[3] in (1, 3):
        images = a.transpose(0, 3, 1, 2)
    else:
        raise bad(path, "N x C x H x W or N x H x W x C with C 1 or 3, N x H x W, or N x 2", describe(a))
    if a.dtype == np.uint8:
        pass
    elif a.dtype.kind == "f":
        check_float_range(path, a)
    else:
        raise bad(path, "uint8 images (0..255) or float images in [-1, 1]", describe(a))
    return ImageSource("npy", None, Images([images], None), None, seed, device)
