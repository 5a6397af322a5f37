"""Data registry: name -> module providing `build(data_cfg, seed, device)` returning a source with
`shape` (one sample's shape) and `sample(n) -> tensor [n, *shape] on device`."""

import importlib

from ..errors import WorkerError

DATASETS = {
    "ring8": "ddst_worker.data.toy",
    "grid25": "ddst_worker.data.toy",
    "synthetic": "ddst_worker.data.synthetic",  # random images, for benchmarks and tests
}


def build_data(data_cfg: dict, seed: int, device: str):
    name = data_cfg.get("name")
    if name not in DATASETS:
        raise WorkerError("bad_value", f"unknown data set {name!r}; known: {sorted(DATASETS)}", {"data": name})
    return importlib.import_module(DATASETS[name]).build(data_cfg, seed, device)
