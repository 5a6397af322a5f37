"""CUDA smoke test: the paper's SNGAN on the GPU through the Session ops, invariants checked on the device.

Skipped where torch sees no CUDA device (CI and the CPU dev machines); run it on a GPU machine with
`python -m pytest tests/test_cuda.py -q`.
"""

import numpy as np
import pytest
import torch

from ddst_worker.masking import count_for, maskable_layers
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

BUILD = {"seed": 5, "device": "cuda", "model": {"name": "sngan32"},
         "data": {"name": "synthetic", "shape": [3, 32, 32]},
         "train": {"batchSize": 4, "genBatchSize": 6, "nCritic": 2, "loss": "hinge", "lrG": 2e-4, "lrD": 2e-4,
                   "betas": [0, 0.9], "ema": 0.999}}


def check_invariants(s: Session) -> None:
    """Weights, Adam moments and the EMA's weights are exactly 0 outside the masks, all on the GPU."""
    gan = s.gan
    for masks, model in ((gan.masks_g, gan.G), (gan.masks_d, gan.D)):
        for l in masks.layers:
            assert l.weight.is_cuda and l.mask.is_cuda and l.ever_active.is_cuda
            assert (l.weight.detach()[~l.mask] == 0).all(), l.name
            state = masks.optimizer.state.get(l.weight, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    assert state[key].is_cuda and (state[key][~l.mask] == 0).all(), (l.name, key)
        assert all(p.is_cuda for p in model.parameters()) and all(b.is_cuda for b in model.buffers())
    for l, (_, w) in zip(gan.masks_g.layers, maskable_layers(gan.ema.model)):
        assert w.is_cuda and (w[~l.mask] == 0).all(), l.name


def test_sngan32_on_cuda():
    s = Session()
    args = complete_build(BUILD)
    r = s.op_build(args)
    assert r["device"] == "cuda" and r["dataShape"] == [3, 32, 32]
    assert r["execution"] == {k: args["train"][k] for k in ("cudaGraphs", "channelsLast", "compile")}  # CUDA applies each
    assert sum(l["macs"] for l in r["layers"] if l["net"] == "generator") == 1_683_553_280
    assert s.gan.data.sample(2).is_cuda and s.gan.z(2).is_cuda

    densities = {net: {l["name"]: 0.3 for l in r["layers"] if l["net"] == net and l["maskable"]}
                 for net in ("generator", "discriminator")}
    stats = s.op_setMasks(densities)
    for net in ("generator", "discriminator"):
        assert all(l["active"] == count_for(0.3, l["total"]) for l in stats[net]["layers"])
    check_invariants(s)

    result, tensors = s.handle("train", {"start": 1, "iterations": 3, "probeEvery": 1}, {})
    losses, probes = dict(tensors)["losses"], dict(tensors)["probes"]
    assert result == {"end": 3, "iterations": 3, "interrupted": False} and losses.shape == (3, 3) and probes.shape == (3, 4)
    assert np.isfinite(losses).all() and np.isfinite(probes).all()
    check_invariants(s)

    g_active, d_active = s.gan.masks_g.active(), s.gan.masks_d.active()
    step = s.op_dstStep({"net": "generator", "dropRate": 0.5, "prune": "global_magnitude",
                         "growth": "global_gradient", "alpha": 0.5})
    assert step["pruned"] == step["grown"] == count_for(0.5, g_active) and step["active"] == g_active
    step = s.op_dstStep({"net": "discriminator", "dropRate": 0.3, "prune": "set", "growth": "hybrid", "alpha": 0.5})
    assert step["pruned"] == step["grown"] > 0 and step["active"] == d_active
    check_invariants(s)

    out = s.op_setDensity({"net": "discriminator", "target": 0.5, "growth": "global_gradient"})
    assert out["active"] == count_for(0.5, out["total"]) and out["grown"] == out["active"] - d_active
    out = s.op_setDensity({"net": "generator", "target": 0.2, "growth": "global_gradient"})
    assert out["active"] == count_for(0.2, out["total"]) and out["pruned"] == g_active - out["active"]
    check_invariants(s)

    s.handle("train", {"start": 4, "iterations": 1, "probeEvery": 0}, {})
    check_invariants(s)
    _, a = s.op_sample({"n": 3, "seed": 1, "batchSize": 100, "batchNorm": "batch"})
    _, b = s.op_sample({"n": 3, "seed": 1, "batchSize": 100, "batchNorm": "batch"})
    samples = dict(a)["samples"]
    assert samples.shape == (3, 3, 32, 32) and samples.device.type == "cpu" and samples.dtype == torch.float32
    assert torch.equal(samples, dict(b)["samples"])
