"""Numerics settings and the profile on the CPU: bf16 autocast, CUDA-only switches that a CPU build ignores,
and what `train` with `profile` answers. The GPU side is in test_cuda_graphs.py."""

import time

import numpy as np
import pytest
import torch

from ddst_worker.memory_format import use_channels_last
from ddst_worker.precision import Fp32SpectralNorm
from ddst_worker.profiling import busy_seconds, profiled
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(**train):
    """A small spectral-normed DCGAN, masked, 4 iterations with probes -> (session, losses, probes)."""
    s = Session()
    r = s.op_build(complete_build({
        "seed": 3, "device": "cpu", "model": {"name": "dcgan32", "width": 8, "latentDim": 16, "spectralNorm": True},
        "data": {"name": "synthetic", "shape": [3, 32, 32]},
        "train": {"batchSize": 8, "genBatchSize": 8, "nCritic": 2, "ema": 0.9, **train}}))
    s.op_setMasks({net: {l["name"]: 0.5 for l in r["layers"] if l["net"] == net and l["maskable"]}
                   for net in ("generator", "discriminator")})
    _, t = s.handle("train", {"start": 1, "iterations": 4, "probeEvery": 2}, {})
    return s, dict(t)["losses"], dict(t)["probes"]


def test_cuda_switches_change_nothing_on_the_cpu():
    _, losses, probes = run(cudaGraphs=False, channelsLast=False)
    s, l2, p2 = run(cudaGraphs=True, tf32=False, channelsLast=True)
    assert s.gan.graphs is None and all(st["step"].device.type == "cpu" for st in s.gan.opt_d.state.values())
    assert not any(m._forward_pre_hooks for m in s.gan.G.modules())  # no channels-last hooks
    assert np.array_equal(losses, l2) and np.array_equal(probes, p2)


def test_channels_last_hands_convolutions_nhwc_inputs_and_keeps_the_values():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                              torch.nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 8, 8)
    plain = net(x)
    seen = []
    use_channels_last(net)
    net[3].register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    out = net(x)
    assert seen == [True] and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, plain)
    assert net[0].weight.is_contiguous()  # weights keep their layout: masks and checkpoints see the same tensors


def test_growth_gradients_leave_no_autograd_history_on_spectral_norm():
    """Classic spectral norm caches each forward's weight on its module; after a growth gradient that cache
    must not hold the pass's autograd graph (a CUDA graph capture would meet its default-stream nodes)."""
    s, *_ = run()
    s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "magnitude", "growth": "gradient", "alpha": 0.5})
    normed = [m for m in s.gan.D.modules() if hasattr(m, "weight_orig")]
    assert normed and all(m.weight.grad_fn is None for m in normed)


def test_bf16_trains_near_fp32_with_fp32_spectral_norm():
    _, losses, probes = run()
    s, b16, p16 = run(precision="bf16")
    hooks = [h for m in s.gan.D.modules() for h in m._forward_pre_hooks.values()]
    assert hooks and all(type(h) is Fp32SpectralNorm for h in hooks)
    assert not np.array_equal(losses, b16)  # it did run in bf16
    np.testing.assert_allclose(b16, losses, rtol=0.05, atol=0.02)
    np.testing.assert_allclose(p16, probes, rtol=0.05, atol=0.02)
    assert all(p.dtype == torch.float32 for p in s.gan.D.parameters())
    for masks in (s.gan.masks_g, s.gan.masks_d):
        for l in masks.layers:
            assert (l.weight.detach()[~l.mask] == 0).all()
    _, again, _ = run(precision="bf16")
    assert np.array_equal(b16, again)  # deterministic on the CPU, like fp32


def test_fp32_spectral_norm_under_autocast_is_the_fp32_weight():
    """The swapped hook computes exactly the weight plain fp32 spectral norm computes, autocast or not."""
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 4, 3))
    hook = next(iter(conv._forward_pre_hooks.values()))
    reference = hook.compute_weight(conv, do_power_iteration=False)
    hook.__class__ = Fp32SpectralNorm
    with torch.autocast("cpu", dtype=torch.bfloat16):
        weight = hook.compute_weight(conv, do_power_iteration=False)
    assert weight.dtype == torch.float32 and torch.equal(weight, reference)


def test_profile_on_the_cpu():
    s, *_ = run()
    r, t = s.handle("train", {"start": 5, "iterations": 3, "probeEvery": 2, "profile": True}, {})
    p = r["profile"]
    assert r["iterations"] == 3 and dict(t)["losses"].shape == (3, 3)
    assert p["wallS"] > 0 and p["cpuOps"] > 100
    assert p["launches"] is None and p["kernels"] is None and p["busyS"] is None and p["syncs"] is None
    assert p["topKernels"] is None
    names = [n for n, _ in p["topOps"]]
    counts = [c for _, c in p["topOps"]]
    assert 0 < len(names) <= 12 and all(n.startswith("aten::") for n in names)
    assert counts == sorted(counts, reverse=True) and sum(counts) <= p["cpuOps"]


def test_profile_counts_only_what_runs_inside_its_window():
    a, b = torch.ones(3), torch.ones(3)
    for n in (1, 5):
        t0 = time.perf_counter()
        out, p = profiled(lambda: [torch.add(a, b) for _ in range(n)], "cpu")
        outside = time.perf_counter() - t0
        assert len(out) == n and p["cpuOps"] == n  # aten::add, nothing of the profiler's own
        assert 0 < p["wallS"] < outside  # the profiler's start and flush are not fn's time


def test_busy_seconds_is_the_union_of_intervals():
    assert busy_seconds([]) == 0
    assert busy_seconds([(0, 10), (5, 15), (20, 30), (21, 22), (30, 31)]) == pytest.approx(26e-6)
