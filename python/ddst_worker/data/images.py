"""What every image loader shares: the source that training samples from, and the error helpers.

An image data set is held as uint8 arrays [N, C, H, W] (a few arrays, "parts", when it comes in several
files; memory-mapped views for the big ones, e.g. STL-10's unlabeled_X.bin). Pixels stay uint8 until a
batch is drawn: `sample(n)` gathers n images, moves them to the device, pads or resizes them there and
scales them to float32 in [-1, 1] as x / 127.5 - 1 (0 -> -1, 255 -> 1), the range of G's tanh.

Sampling: `sample(n)` draws n indices uniformly WITH replacement (torch.randint) from the data generator
(and, with `hflip`, then n coins for left-right flips, as the reference's RandomHorizontalFlip),
a CPU torch.Generator seeded with the build seed, so the indices (and the batches, resizing aside) are the
same on CPU and CUDA; they reach a GPU through pinned memory without blocking the host (`to_device`).
With replacement rather than shuffled epochs: a GAN iteration draws a fresh batch for each D step, there is
no notion of an epoch in the protocol, and the stream then does not depend on where an epoch ends.

Storage: a split of at most RESIDENT_BYTES (1 GiB; every split but STL-10's with unlabeled images) is kept
as one tensor on the device, so a CUDA batch is an index_select on the GPU with no host copy of pixels.
Bigger ones stay memory-mapped on the host (or in memory, used in place, on CPU): a batch gathers only the
drawn rows and copies them to the device.

Reference statistics: `arrays(split)` returns (images uint8 [N, *shape], labels int64 [N] or None) after
the same pad/resize as training batches (`stored(split)`: the same before them); `iter_images(split,
batch)` yields them in chunks for sets too big to hold at once (STL-10 train+unlabeled at 48x48 is 727 MB
as uint8). `split=None` is the source's own split; another split of the same data set is loaded on demand
and not kept.
"""

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import WorkerError

RESIDENT_BYTES = 1 << 30  # in-memory data sets up to 1 GiB live on the device as one uint8 tensor


def to_device(x: torch.Tensor, device) -> torch.Tensor:
    """A host tensor on `device`. To a GPU through pinned memory and without blocking: a copy from pageable
    memory makes the host wait for the GPU's queue to drain first, once per batch. The caching host
    allocator keeps the pinned block until the copy has run."""
    if torch.device(device).type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def bad(path, expected: str, found: str, **detail) -> WorkerError:
    """A bad_value error whose message names the file, what was expected and what was found."""
    return WorkerError("bad_value", f"{path}: expected {expected}, found {found}",
                       {"file": str(path), "expected": expected, "found": found, **detail})


def n_(x: int) -> str:
    return f"{x:,}"


def read_bytes(path: Path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise bad(path, what, "no such file" if not path.exists() else "not a regular file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise bad(path, what, f"an unreadable file ({e.strerror or e})")


def need_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise bad(path, what, "no such directory" if not path.exists() else "a file, not a directory")
    return path


def first_existing(directory: Path, names: list[str], what: str) -> Path:
    """The first of `names` present in `directory`, else an error naming the first and listing the rest."""
    for name in names:
        if (directory / name).is_file():
            return directory / name
    others = f" (also looked for {', '.join(names[1:])})" if len(names) > 1 else ""
    raise bad(directory / names[0], what, "no such file" + others, looked_for=names)


def check_labels(path, labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and int(labels.max()) >= num_classes:
        i = int(np.argmax(labels >= num_classes))
        raise bad(path, f"labels 0..{num_classes - 1}", f"label {int(labels[i])} at record {n_(i)}")
    return labels.astype(np.int64)


def split_of(cfg: dict, allowed: tuple) -> str:
    split = cfg["split"]
    if split not in allowed:
        raise WorkerError("bad_value", f"{cfg['name']}: split must be one of {list(allowed)}", {"split": split})
    return split


class Images:
    """One split of an image data set: parts [Ni, C, H, W] (uint8, or float32 in [-1, 1] for .npy),
    labels int64 [N] (-1 for unlabeled images) or None when no image has a label."""

    def __init__(self, parts: list[np.ndarray], labels: np.ndarray | None):
        assert parts and all(p.ndim == 4 and p.shape[1:] == parts[0].shape[1:] for p in parts)
        self.parts = parts
        self.labels = labels
        self.count = sum(len(p) for p in parts)
        assert labels is None or len(labels) == self.count
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.raw_shape = tuple(int(d) for d in parts[0].shape[1:])
        self.dtype = parts[0].dtype

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def mapped(self) -> bool:
        return any(_mapped_base(p) for p in self.parts)

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Rows idx (any order, repeats allowed) as one array; on memory maps only those rows are read."""
        if len(self.parts) == 1:
            return np.ascontiguousarray(self.parts[0][idx])
        out = np.empty((len(idx), *self.raw_shape), self.dtype)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for k, part in enumerate(self.parts):
            sel = np.nonzero(which == k)[0]
            if len(sel):
                out[sel] = part[idx[sel] - self.offsets[k]]
        return out

    def chunks(self, batch: int) -> Iterator[np.ndarray]:
        for part in self.parts:
            for i in range(0, len(part), batch):
                yield np.array(part[i:i + batch])  # a writable copy: torch.from_numpy takes it


def _mapped_base(a: np.ndarray) -> bool:
    while a is not None and isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return False


class Transform:
    """What turns a stored batch into a training batch: zero padding (MNIST 28 -> 32) or an antialiased
    bilinear resize (STL-10 96 -> 48), applied on the device before scaling."""

    def __init__(self, pad: tuple[int, int, int, int] | None = None, size: tuple[int, int] | None = None):
        self.pad = pad      # (left, right, top, bottom) zero pixels, as F.pad takes them
        self.size = size    # (H, W) after resizing

    def out_shape(self, raw: tuple) -> tuple:
        c, h, w = raw
        if self.pad:
            l, r, t, b = self.pad
            return (c, h + t + b, w + l + r)
        if self.size:
            return (c, *self.size)
        return raw

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, C, H, W] uint8 -> [n, *out] float32 holding whole numbers 0..255."""
        if self.pad:
            x = F.pad(x, self.pad)  # zeros: black, -1 after scaling
        x = x.float()
        if self.size and tuple(x.shape[-2:]) != self.size:
            # torchvision's Resize on tensors (antialias=True) and PIL's BILINEAR reduction; rounded back
            # to whole levels as torchvision does for uint8 images, so training batches and the uint8
            # reference images are the same pictures.
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
        return x


class ImageSource:
    """The training source for one image split; see the module docstring."""

    def __init__(self, name: str, split: str | None, data: Images, num_classes: int | None, seed: int,
                 device: str, transform: Transform | None = None,
                 reload: Callable[[str], Images] | None = None, splits: tuple = (), hflip: bool = False):
        self.name = name
        self.hflip = hflip
        self.split = split
        self.splits = tuple(splits)
        self.data = data
        self.num_classes = num_classes
        self.labels = data.labels
        self.count = data.count
        self.device = device
        self.transform = transform or Transform()
        self.float_data = data.dtype != np.uint8
        self.shape = tuple(int(d) for d in self.transform.out_shape(data.raw_shape))
        self.gen = torch.Generator().manual_seed(int(seed))  # CPU: the same indices on every device
        self._reload = reload
        self._resident = None
        if data.nbytes <= RESIDENT_BYTES or (device == "cpu" and not data.mapped):
            if len(data.parts) > 1 and not data.mapped:
                data.parts = [np.concatenate(data.parts)]  # one copy of the pixels, not two
                data.offsets = np.array([0, data.count])
            arr = data.parts[0] if len(data.parts) == 1 else np.concatenate(data.parts)
            arr = np.ascontiguousarray(arr, np.float32 if self.float_data else np.uint8)
            if not arr.flags.writeable:  # torch wants writable memory (frombuffer over bytes, memory maps)
                arr = arr.copy()
            self._resident = torch.from_numpy(arr).to(device)

    def __len__(self) -> int:
        return self.count

    def _indices(self, n: int) -> torch.Tensor:
        return torch.randint(self.count, (int(n),), generator=self.gen)

    def _batch(self, idx: torch.Tensor) -> torch.Tensor:
        if self._resident is not None:
            x = self._resident.index_select(0, to_device(idx, self._resident.device))
        else:
            arr = self.data.gather(idx.numpy())
            x = to_device(torch.from_numpy(arr.astype(np.float32, copy=False) if self.float_data else arr), self.device)
        if self.float_data:
            return x.float()
        return self.transform(x).div_(127.5).sub_(1.0)

    def sample(self, n: int) -> torch.Tensor:
        """n real training images [n, *shape], float32 in [-1, 1], on the device; with `hflip`, each flipped
        left-right with probability 1/2, the coin drawn from the data generator right after the indices."""
        x = self._batch(self._indices(n))
        if self.hflip:
            flip = torch.randint(2, (int(n),), generator=self.gen).bool()
            x = torch.where(to_device(flip, x.device).view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
        return x

    def sample_labeled(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Like sample, with the labels (int64 on the device; -1 unlabeled) of the images drawn."""
        idx = self._indices(n)
        y = None if self.labels is None else to_device(torch.from_numpy(self.labels[idx.numpy()]), self.device)
        return self._batch(idx), y

    # ---- reference data for metrics: uint8, after the same pad/resize as training batches ----

    def _split_data(self, split: str | None) -> Images:
        if split is None or split == self.split:
            return self.data
        if self._reload is None or split not in self.splits:
            raise WorkerError("bad_value", f"{self.name}: no split {split!r}; it has {list(self.splits) or 'none'}",
                              {"data": self.name, "split": split})
        return self._reload(split)

    def _to_uint8(self, chunk: np.ndarray) -> np.ndarray:
        if self.float_data:  # .npy floats in [-1, 1] -> nearest level
            return np.rint((chunk.astype(np.float32) + 1) * 127.5).clip(0, 255).astype(np.uint8)
        if not self.transform.pad and not self.transform.size:
            return chunk
        return self.transform(torch.from_numpy(chunk)).to(torch.uint8).numpy()

    def iter_images(self, split: str | None = None, batch: int = 1000) -> Iterator[np.ndarray]:
        """uint8 [b, *shape] chunks of every image of the split, in stored order."""
        for chunk in self._split_data(split).chunks(batch):
            yield self._to_uint8(chunk)

    def arrays(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(uint8 images [N, *shape], int64 labels [N] or None) of a whole split."""
        data = self._split_data(split)
        out = np.empty((data.count, *self.shape), np.uint8)
        i = 0
        for chunk in data.chunks(1000):
            out[i:i + len(chunk)] = self._to_uint8(chunk)
            i += len(chunk)
        return out, data.labels

    def stored(self, split: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(images as stored, BEFORE pad/resize [N, C, H, W], labels int64 [N] or None) of a whole split:
        what the domain classifier trains on, so one cached classifier serves a data set padded or not."""
        data = self._split_data(split)
        return (data.parts[0] if len(data.parts) == 1 else np.concatenate(data.parts)), data.labels

    def all_images(self, split: str | None = None) -> np.ndarray:
        return self.arrays(split)[0]

    def all_labels(self, split: str | None = None) -> np.ndarray | None:
        return self._split_data(split).labels


class PointSource:
    """N x 2 points from a .npy file: sampled like images, returned as they are (float32)."""

    def __init__(self, points: np.ndarray, seed: int, device: str):
        self.points = np.ascontiguousarray(points, np.float32)
        self.shape = (int(self.points.shape[1]),)
        self.count = len(self.points)
        self.labels = None
        self.num_classes = None
        self.device = device
        self.gen = torch.Generator().manual_seed(int(seed))
        self._data = torch.from_numpy(self.points).to(device)

    def __len__(self) -> int:
        return self.count

    def sample(self, n: int) -> torch.Tensor:
        idx = torch.randint(self.count, (int(n),), generator=self.gen)
        return self._data.index_select(0, to_device(idx, self._data.device))

    def all_points(self) -> np.ndarray:
        return self.points
