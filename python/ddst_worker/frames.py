"""Tensor frame codec: raw little-endian C-contiguous bytes described by {name, dtype, shape}.

Bulk data never goes through JSON; the header names each frame's dtype and shape instead.
"""

import math

import numpy as np
import torch

from .errors import WorkerError

# Wire dtype name -> little-endian numpy dtype.
DTYPES = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "bool": np.dtype("?"),
}


def _wire_name(dtype: np.dtype) -> str:
    for name, dt in DTYPES.items():
        if dtype.kind == dt.kind and dtype.itemsize == dt.itemsize:
            return name
    raise WorkerError("bad_tensor", f"dtype {dtype} cannot go on the wire; use one of {sorted(DTYPES)}")


def encode(name: str, value) -> tuple[dict, bytes]:
    """(descriptor, bytes) for a numpy array or torch tensor."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    wire = _wire_name(arr.dtype)
    arr = np.asarray(arr, dtype=DTYPES[wire], order="C")  # C order, little-endian (keeps 0-d shapes)
    return {"name": name, "dtype": wire, "shape": list(arr.shape)}, arr.tobytes()


def decode(desc: dict, data: bytes) -> np.ndarray:
    """A writable numpy array from one frame; raises bad_tensor when the bytes disagree with `desc`."""
    name = desc.get("name")
    dtype = DTYPES.get(desc.get("dtype"))
    shape = desc.get("shape")
    if dtype is None:
        raise WorkerError("bad_tensor", f"tensor {name!r}: unknown dtype {desc.get('dtype')!r}",
                          {"name": name, "dtypes": sorted(DTYPES)})
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise WorkerError("bad_tensor", f"tensor {name!r}: shape must be a list of non-negative ints",
                          {"name": name, "shape": shape})
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise WorkerError("bad_tensor",
                          f"tensor {name!r}: frame has {len(data)} bytes, {desc['dtype']}{shape} needs {expected}",
                          {"name": name, "expected": expected, "got": len(data)})
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def decode_all(descs: list[dict], frames: list[bytes]) -> dict[str, np.ndarray]:
    """Decode every tensor frame named in header.tensors; frame count must match."""
    if len(descs) != len(frames):
        raise WorkerError("bad_tensor", f"header lists {len(descs)} tensors but {len(frames)} frames followed",
                          {"expected": len(descs), "got": len(frames)})
    return {d.get("name", str(i)): decode(d, f) for i, (d, f) in enumerate(zip(descs, frames))}


def encode_all(tensors: list[tuple[str, object]]) -> tuple[list[dict], list[bytes]]:
    descs, frames = [], []
    for name, value in tensors:
        desc, data = encode(name, value)
        descs.append(desc)
        frames.append(data)
    return descs, frames
