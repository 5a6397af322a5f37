"""The real side of a Fréchet distance: the Gaussian statistics of a reference split's features, cached.

They depend on the feature network and the reference images only, so they are computed once and kept: in
memory for the worker's life (the newest MEMORY_STATS), and on disk under cacheDir/reference-stats, keyed by
the network (its kind and identity: the classifier's cache file, or the Inception weights' size and mtime) and
the data (name, split, count, and a SHA-256 of the reference images themselves), so a later worker pays only
for the generated side. A cache file that cannot be read is recomputed; one that cannot be written only makes
the next time slower.
"""

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from .data.synthetic import Synthetic
from .errors import WorkerError
from .metrics.fid import RunningStats, frechet_distance, psd_sqrt

STATS_VERSION = 1         # part of the disk key
MEMORY_STATS = 8          # statistics kept in memory (an Inception sigma is 32 MB)
SYNTHETIC_SEEDS = {"train": 0, "test": 1}  # `synthetic` data: reference images from these seeds


class Reference:
    """A reference set's Gaussian statistics, with sigma's square root made once, at first use: it is the
    larger half of a Fréchet distance (an eigendecomposition of 2048 x 2048 for Inception)."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray):
        self.mu, self.sigma, self._sqrt = mu, sigma, None

    def distance(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        if self._sqrt is None:
            self._sqrt = psd_sqrt(self.sigma)
        return frechet_distance(self.mu, self.sigma, mu, sigma, s1_sqrt=self._sqrt)


def reference_images(data, split: str, n: int) -> np.ndarray:
    """The first min(n, len) images of the real split: uint8 [m, *shape] after the run's pad/resize;
    for `synthetic` data, n uniform images in [-1, 1) (float32) from a generator seeded by the split.
    A data set with no splits (folder, npy) is its own train split."""
    if isinstance(data, Synthetic):
        gen = torch.Generator().manual_seed(SYNTHETIC_SEEDS[split])
        return (torch.rand((n, *data.shape), generator=gen) * 2 - 1).numpy()
    if data.split is None and split == "train":
        split = None
    out, have = [], 0
    for chunk in data.iter_images(split, batch=1000):
        out.append(chunk[:n - have])
        have += len(out[-1])
        if have >= n:
            break
    return np.concatenate(out)


def digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(repr((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True).encode())
        h.update(b"\0")
    return h.hexdigest()


def read_stats(path: Path):
    """Reference from a cache file, or None when it is missing, unreadable or not what it should be."""
    try:
        with np.load(path, allow_pickle=False) as f:
            mu, sigma = f["mu"], f["sigma"]
    except Exception:
        return None
    d = mu.shape[0] if mu.ndim == 1 else -1
    if sigma.shape != (d, d) or not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return None
    return Reference(mu.astype(np.float64), sigma.astype(np.float64))


def write_stats(path: Path, mu, sigma, count: int) -> None:
    """Atomic (a temporary name, then a rename); a cache that cannot be written is only a slower next time."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, count=np.int64(count))
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        print(f"ddst-worker: cannot cache reference statistics at {path}: {e}", file=sys.stderr, flush=True)


class ReferenceStats:
    """The cache: `lookup` answers from memory or disk, or says what `compute` needs."""

    def __init__(self):
        self.memory = {}  # (kind, net identity, data key, split, n) -> Reference, oldest first

    def lookup(self, kind: str, ident: str, data, data_key: str, split: str, n: int, cache_dir: str):
        """-> (Reference, None) when cached, else (None, pending) for `compute`."""
        mkey = (kind, ident, data_key, split, n)
        if mkey in self.memory:
            return self.memory[mkey], None
        try:
            images = reference_images(data, split, n)
        except WorkerError as e:
            if e.detail.get("split") != split:
                raise
            raise WorkerError("bad_value", f"eval.reference {split!r}: {e.message}; the FID's real side comes from a "
                              "split the data has (a data set without splits, folder or npy, is its own 'train')",
                              {"split": split}) from e
        if len(images) < 2:
            raise WorkerError("bad_value", f"the {split} split has {len(images)} image(s); FID needs at least 2",
                              {"split": split})
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", getattr(data, "name", "synthetic"))
        key = digest(STATS_VERSION, kind, ident, name, split, len(images), images)
        file = Path(cache_dir) / "reference-stats" / f"{kind}-{name}-{split}-n{len(images)}-{key[:16]}.npz"
        stats = read_stats(file)
        if stats is not None:
            self._remember(mkey, stats)
            return stats, None
        return None, (images, file, mkey)

    def compute(self, pending, feed):
        """Statistics of the pending images' features; `feed(images, add)` runs the feature network and calls
        add(features) per batch. None when a feature is not finite (no FID against it, nothing cached)."""
        images, file, mkey = pending
        running = RunningStats()
        feed(images, running.add)
        mu, sigma = running.stats()
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            return None
        ref = Reference(mu, sigma)
        write_stats(file, mu, sigma, len(images))
        self._remember(mkey, ref)
        return ref

    def _remember(self, key, stats) -> None:
        self.memory.pop(key, None)
        self.memory[key] = stats
        while len(self.memory) > MEMORY_STATS:
            self.memory.pop(next(iter(self.memory)))
