"""What masking and a DST step cost, measured through the real Session ops the orchestrator drives.

    python -m ddst_worker.bench [--model sngan32] [--batch 64] [--iters N] [--device cpu]

Prints ONE JSON object with per-iteration seconds (medians over N timed runs, each after 1 warm-up) of
  (a) denseIterS:  a training iteration with no masks set (nCritic 1, no BR probe, EMA on as by default),
  (b) maskedIterS: the same iteration with every maskable layer of G and D at density 0.1 (uniform per
      layer; ERK belongs to the orchestrator),
  (c) dstStepS:    one global prune-and-grow step on G (drop rate 0.5, global_magnitude prune,
      global_gradient growth), its growth gradient included,
and the ratios maskedOverDense and dstOverMaskedIter. Data is `synthetic` (random images): only the
timing means anything. Each timed op ends with a device sync, so CUDA times are wall-clock complete.
"""

import argparse
import json
import statistics
import sys
import time

import torch

from .session import Session
from .spec_defaults import complete_build

DENSITY = 0.1
DATA = {  # the data each model is for; synthetic images of that shape, the toy ring for mlp2d
    "sngan32": {"name": "synthetic", "shape": [3, 32, 32]},
    "sngan48": {"name": "synthetic", "shape": [3, 48, 48]},
    "dcgan28": {"name": "synthetic", "shape": [1, 28, 28]},
    "dcgan32": {"name": "synthetic", "shape": [3, 32, 32]},
    "mlp2d": {"name": "ring8"},
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, iters: int) -> list[float]:
    """Seconds of each of `iters` calls of fn, after one untimed warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def build_args(model: str, batch: int, device: str) -> dict:
    # Eager steps in NCHW: what masks cost over dense kernels, not what graphs save (`ddst bench --paper`
    # measures those); with graphs a median of three would mix warm-up, capture and replays.
    return complete_build({"seed": 0, "device": device, "model": {"name": model}, "data": DATA[model],
                           "train": {"batchSize": batch, "genBatchSize": batch, "nCritic": 1, "loss": "hinge",
                                     "lrG": 2e-4, "lrD": 2e-4, "betas": [0.0, 0.9], "ema": 0.999,
                                     "cudaGraphs": False, "channelsLast": False, "compile": False}})


def bench(model: str, batch: int, iters: int, device: str) -> dict:
    s = Session()
    built = s.op_build(build_args(model, batch, device))
    step = iter(range(1, 10**9))

    def train_one():
        t = next(step)
        s.handle("train", {"start": t, "iterations": 1, "probeEvery": 0}, {})

    dense = timed(train_one, device, iters)
    uniform = {net: {l["name"]: DENSITY for l in built["layers"] if l["net"] == net and l["maskable"]}
               for net in ("generator", "discriminator")}
    s.op_setMasks(uniform)
    masked = timed(train_one, device, iters)
    dst = timed(lambda: s.op_dstStep({"net": "generator", "dropRate": 0.5, "prune": "global_magnitude",
                                      "growth": "global_gradient", "alpha": 0.5}), device, iters)
    d, m, g = (statistics.median(x) for x in (dense, masked, dst))
    return {"model": model, "batch": batch, "iters": iters, "device": device, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "nCritic": 1, "density": DENSITY,
            "denseIterS": d, "maskedIterS": m, "dstStepS": g,
            "maskedOverDense": m / d, "dstOverMaskedIter": g / m,
            "samples": {"denseIterS": dense, "maskedIterS": masked, "dstStepS": dst}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ddst_worker.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sngan32", choices=sorted(DATA))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=5, help="timed runs of each kind (after 1 warm-up)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = p.parse_args(argv)
    if a.iters < 1 or a.batch < 1:
        p.error("--iters and --batch must be >= 1")
    print(json.dumps(bench(a.model, a.batch, a.iters, a.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
