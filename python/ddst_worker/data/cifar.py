"""CIFAR-10 from a local copy of the official release, binary or Python version.

`path` is a directory holding cifar-10-batches-bin or cifar-10-batches-py, or one of those directories
itself (when both versions are there, the binary one is read: it needs no unpickling). Split "train" is
data_batch_1..5, "test" is test_batch.

Binary version: data_batch_N.bin / test_batch.bin, records of 1 label byte + 3,072 pixel bytes (the R, G
and B planes of 32x32, row-major); the real files hold 10,000 records each, any whole number is accepted.
Python version: data_batch_N / test_batch, pickles of {b"data": uint8 [n, 3072], b"labels": [n ints]}.
They are read with a restricted unpickler that resolves only the numpy globals an array needs
(_reconstruct, ndarray, dtype, and _frombuffer for protocol-5 pickles) and refuses every other global, so
a file that would run code (os.system, eval, ...) is an error naming it, never executed.
"""

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from .images import Images, ImageSource, bad, check_labels, n_, need_dir, read_bytes, split_of

RECORD = 1 + 3072
FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def _numpy_global(name: str):
    import importlib
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray") if name == "_reconstruct" else \
               ("numpy._core.numeric", "numpy.core.numeric"):
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this numpy has no {name}")


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_global("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_global("_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_global("_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_global("_frombuffer"),
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    # Python 3 pickles of protocol 0-2 store bytes as _codecs.encode(str, 'latin1'): it makes bytes, nothing more.
    ("_codecs", "encode"): lambda: codecs.encode,
    # ... and empty bytes (an empty array's buffer) as bytes(): only that form, not bytes(n), which allocates n.
    ("__builtin__", "bytes"): lambda: _bytes_of_bytes,
    ("builtins", "bytes"): lambda: _bytes_of_bytes,
}


def _bytes_of_bytes(*args) -> bytes:
    if not args or (len(args) == 1 and isinstance(args[0], (bytes, bytearray))):
        return bytes(*args)
    raise pickle.UnpicklingError("bytes() of something other than bytes")


class Refused(Exception):
    pass


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global raises Refused."""

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]()
        raise Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        raise Refused("a persistent id")


def load_pickle(path: Path):
    raw = read_bytes(path, "a CIFAR-10 Python batch (a pickle)")
    try:
        return ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Refused as e:
        raise bad(path, "a pickle of numpy arrays and plain containers only",
                  f"a reference to {e} (refused: loading it could run code)", refused=str(e))
    except Exception as e:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        raise bad(path, "a CIFAR-10 Python batch (a pickle)", f"an unreadable pickle ({type(e).__name__}: {e})")


def _get(d: dict, key: str):
    return d[key.encode()] if key.encode() in d else d.get(key)


def read_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise bad(path, 'a dict {b"data": ..., b"labels": ...}', f"a {type(obj).__name__}")
    x, y = _get(obj, "data"), _get(obj, "labels")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or not len(x):
        found = f"{x.dtype} {list(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise bad(path, 'b"data": a uint8 array [n, 3072]', found)
    try:
        given = np.asarray(y if y is not None else [])
        if given.size and given.dtype.kind not in "iu":  # 1.5 or "3" would be truncated or parsed silently
            raise TypeError
        y = given.astype(np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise bad(path, 'b"labels": a list of integers 0..9', f"{type(y).__name__} of {np.asarray(y).dtype}"
                  if isinstance(y, (list, np.ndarray)) else type(y).__name__)
    if len(y) != len(x) or (len(y) and y.min() < 0):
        low = y.min() if len(y) else "-"
        raise bad(path, f'b"labels": {n_(len(x))} integers 0..9', f"{n_(len(y))} values, minimum {low}")
    return x.reshape(-1, 3, 32, 32), check_labels(path, y, 10)


def read_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = read_bytes(path, f"a CIFAR-10 binary batch ({n_(10000 * RECORD)} bytes)")
    if not raw or len(raw) % RECORD:
        raise bad(path, f"{n_(10000 * RECORD)} bytes (10,000 records of {n_(RECORD)}) or another whole number "
                  f"of {n_(RECORD)}-byte records", n_(len(raw)))
    rec = np.frombuffer(bytearray(raw), np.uint8).reshape(-1, RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), check_labels(path, rec[:, 0], 10)


def resolve(path: Path) -> tuple[Path, str]:
    need_dir(path, "a directory holding cifar-10-batches-bin or cifar-10-batches-py")
    layouts = [(d, layout) for d, layout in ((path / "cifar-10-batches-bin", "bin"), (path / "cifar-10-batches-py", "py"))
               if d.is_dir()]
    # Both unpacked side by side, one of them empty or partial (an interrupted extraction): the one that has
    # its first batch. Otherwise the first, whose missing files the loader then names.
    for d, layout in layouts:
        if (d / ("data_batch_1.bin" if layout == "bin" else "data_batch_1")).is_file():
            return d, layout
    if layouts:
        return layouts[0]
    names = [p.name for p in path.iterdir()]
    if any(n.endswith(".bin") and (n.startswith("data_batch_") or n == "test_batch.bin") for n in names):
        return path, "bin"
    if any(n.startswith("data_batch_") or n == "test_batch" for n in names):
        return path, "py"
    raise bad(path / "cifar-10-batches-bin", "CIFAR-10 as cifar-10-batches-bin or cifar-10-batches-py "
              "(or their data_batch_1..5 and test_batch files directly)", "none of them")


def load_split(directory: Path, layout: str, split: str) -> Images:
    parts, labels = [], []
    for name in FILES[split]:
        x, y = read_bin_batch(directory / f"{name}.bin") if layout == "bin" else read_py_batch(directory / name)
        parts.append(x)
        labels.append(y)
    return Images(parts, np.concatenate(labels))


def build(cfg: dict, seed: int, device: str) -> ImageSource:
    split = split_of(cfg, ("train", "test"))
    directory, layout = resolve(Path(cfg["path"]))
    load = lambda s: load_split(directory, layout, s)  # noqa: E731
    return ImageSource("cifar10", split, load(split), 10, seed, device, reload=load, splits=("train", "test"),
                       hflip=bool(cfg["hflip"]))
