"""CUDA graphs, bf16 and the profile on the GPU (skipped where torch sees no CUDA device).

Run on a GPU machine: `python -m pytest tests/test_cuda_graphs.py -q`. The graph path must be the eager path
replayed: the same losses, probes, weights and masks through mask changes (setMasks, dstStep on both nets,
setDensity), and no host synchronization while steps replay.
"""

import gc
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch
from torch.nn.utils.spectral_norm import SpectralNorm

from conftest import mask_ops, train, worker_env

from ddst_worker.precision import Fp32SpectralNorm, set_tf32
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build
from ddst_worker.train import iteration

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

TRAIN = {"batchSize": 8, "genBatchSize": 12, "nCritic": 3, "loss": "hinge", "ema": 0.999}


SNGAN = {"name": "sngan32"}
# Transposed convolutions and BatchNorm in G, spectral norm on strided convolutions in D: the other image model.
DCGAN = {"name": "dcgan32", "width": 16, "latentDim": 32, "spectralNorm": True}


def spec(graphs: bool, precision: str = "fp32", data=None, channels_last: bool = True, model=SNGAN, **train) -> dict:
    return complete_build({"seed": 11, "device": "cuda", "model": model,
                           "data": data or {"name": "synthetic", "shape": [3, 32, 32]},
                           "train": {**TRAIN, "precision": precision, "cudaGraphs": graphs,
                                     "channelsLast": channels_last, **train}})


def build(graphs: bool, precision: str = "fp32", data=None, channels_last: bool = True, model=SNGAN, **train) -> Session:
    s = Session()
    r = s.op_build(spec(graphs, precision, data, channels_last, model, **train))
    s.op_setMasks({net: {l["name"]: 0.25 for l in r["layers"] if l["net"] == net and l["maskable"]}
                   for net in ("generator", "discriminator")})
    return s


@pytest.fixture
def deterministic():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


@pytest.mark.parametrize("channels_last,model", [(True, SNGAN), (False, SNGAN), (True, DCGAN)])
def test_graphs_replay_the_eager_steps(deterministic, channels_last, model):
    """Also through gradient growth, whose eager pass leaves spectral norm's cached weight (and its autograd
    nodes, on the default stream) behind for the next capture to meet."""
    eager, graphed = (build(g, channels_last=channels_last, model=model) for g in (False, True))
    assert eager.gan.graphs is None and graphed.gan.graphs is not None
    for start in (1, 7):
        a, b = train(eager, start, 6), train(graphed, start, 6)
        for key in ("losses", "probes"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
        assert mask_ops(eager)[-1]["active"] == mask_ops(graphed)[-1]["active"]
    a, b = train(eager, 13, 4), train(graphed, 13, 4)
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=1e-5, atol=1e-6)
    # Two mask versions trained after capture: each captured both steps once.
    assert graphed.gan.graphs.captures >= 4
    for net in ("generator", "discriminator"):
        ea, gr = eager.gan.nets()[net], graphed.gan.nets()[net]
        for la, lb in zip(ea.masks.layers, gr.masks.layers):
            assert torch.equal(la.mask, lb.mask), (net, la.name)
            assert (lb.weight.detach()[~lb.mask] == 0).all(), (net, lb.name)
            torch.testing.assert_close(lb.weight.detach(), la.weight.detach(), rtol=1e-4, atol=1e-6)
    for pa, pb in zip(eager.gan.ema.model.parameters(), graphed.gan.ema.model.parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-6)


def test_channels_last_computes_the_same_networks():
    """Channels-last changes the layout of activations, not what the networks compute: with the same weights,
    the same logits and the same samples up to float rounding (TF32 off: the comparison is of layouts, not of
    cuDNN's TF32 algorithms, whose roundings differ between layouts by ~1e-3 and which training amplifies), and
    the activations really are NHWC while the weights keep their layout."""
    nhwc, nchw = (build(False, channels_last=c) for c in (True, False))
    set_tf32(False)
    try:
        for s in (nhwc, nchw):
            s.gan.G.eval(), s.gan.D.eval()  # no power iteration, no batch statistics: a pure function of the weights
        x, z = nhwc.gan.data.sample(8), nhwc.gan.z(8)
        with torch.no_grad():
            fake_a, fake_b = nhwc.gan.G(z), nchw.gan.G(z)
            torch.testing.assert_close(fake_a, fake_b, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(nhwc.gan.D(x), nchw.gan.D(x), rtol=1e-4, atol=1e-4)
        assert fake_a.is_contiguous(memory_format=torch.channels_last)
        assert not fake_b.is_contiguous(memory_format=torch.channels_last)
        assert all(p.is_contiguous() for p in nhwc.gan.G.parameters())
    finally:
        set_tf32(True)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_no_host_sync_while_steps_replay(tmp_path, compiled):
    images = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    s = build(True, data={"name": "npy", "path": str(tmp_path / "x.npy")}, compile=compiled)  # pinned indices
    for probe in (False, True, False):  # warm-up and capture; with compile, every variant compiled (syncs)
        iteration(s.gan, probe)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for probe in (False, True, False):
            iteration(s.gan, probe)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.parametrize("model", [SNGAN, DCGAN], ids=["sngan", "dcgan"])
def test_compiled_networks_train_as_the_modules(deterministic, model):
    """train.compile with graphs (inductor's fused kernels, captured) against the plain eager loop: the same
    training within float rounding (TF32 off: the comparison is of kernels, not of TF32's roundings), the same
    densities through mask changes, and no recompilation after the first iterations."""
    import torch._dynamo
    eager = build(False, channels_last=False, model=model, tf32=False)
    fused = build(True, model=model, tf32=False, compile=True)
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):  # not silently eager past the limit
        compiled_against_eager(eager, fused)


def compiled_against_eager(eager: Session, fused: Session) -> None:
    from torch._dynamo.utils import counters
    assert fused.gan.compiled is not None and eager.gan.compiled is None
    a, b = train(eager, 1, 6), train(fused, 1, 6)  # compiles every variant, warms up, captures
    graphs = counters["stats"]["unique_graphs"]
    for start in (7, 13):
        for key in ("losses", "probes"):
            np.testing.assert_allclose(b[key], a[key], rtol=5e-3, atol=1e-3, err_msg=key)
        assert mask_ops(eager)[-1]["active"] == mask_ops(fused)[-1]["active"]
        a, b = train(eager, start, 6), train(fused, start, 6)
    np.testing.assert_allclose(b["losses"], a["losses"], rtol=5e-3, atol=1e-3)
    assert counters["stats"]["unique_graphs"] == graphs, "a mask change recompiled"
    assert fused.gan.graphs.captures >= 6
    for l in fused.gan.masks_d.layers + fused.gan.masks_g.layers:
        assert (l.weight.detach()[~l.mask] == 0).all(), l.name


def test_checkpoint_load_recaptures(tmp_path, deterministic):
    s = build(True)
    train(s, 1, 5)
    s.op_save({"path": str(tmp_path / "c.pt")})
    after = train(s, 6, 4)
    captures = s.gan.graphs.captures
    s.op_load({"path": str(tmp_path / "c.pt")})  # new optimizer state tensors: the old graphs must go
    again = train(s, 6, 4)
    assert s.gan.graphs.captures > captures
    np.testing.assert_allclose(again["losses"], after["losses"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("graphs", [False, True])
def test_bf16(graphs):
    s = build(graphs, precision="bf16")
    hooks = [h for m in s.gan.D.modules() for h in m._forward_pre_hooks.values() if isinstance(h, SpectralNorm)]
    assert hooks and all(type(h) is Fp32SpectralNorm for h in hooks)
    out = train(s, 1, 5)
    assert np.isfinite(out["losses"]).all() and np.isfinite(out["probes"]).all()
    assert all(p.dtype == torch.float32 for p in s.gan.G.parameters())
    for l in s.gan.masks_g.layers:
        assert (l.weight.detach()[~l.mask] == 0).all()


def test_profile_counts_launches_and_busy_time():
    per_iteration = {}
    for graphs in (False, True):
        s = build(graphs)
        train(s, 1, 4)  # past warm-up and capture
        r, _ = s.handle("train", {"start": 5, "iterations": 5, "probeEvery": 10, "profile": True}, {})
        p = r["profile"]
        assert p["kernels"] > 0 and 0 < p["busyS"] <= p["wallS"] and p["kernelS"] > 0 and p["syncs"] >= 0
        assert 0 < sum(s for _, _, s in p["topKernels"]) <= p["kernelS"] * (1 + 1e-9)
        per_iteration[graphs] = p["launches"] / 5
    assert per_iteration[True] < per_iteration[False] / 5, per_iteration


def test_a_failed_capture_says_to_turn_graphs_off():
    """A step that cannot be captured (here: it reads a value back to the host) fails with a message naming
    the step and the setting. In its own process: a broken capture may leave the CUDA context unusable."""
    code = """
import torch
from ddst_worker.errors import WorkerError
from ddst_worker.step_graphs import StepGraph
w = torch.ones(4, device="cuda")
step = StepGraph("D step", lambda x: (w.mul_(x.sum().item()),), torch.cuda.graph_pool_handle(), lambda: None)
x = torch.ones(4, device="cuda")
step(x); step(x)  # warm-up, eager
try:
    step(x)
except WorkerError as e:
    print("REFUSED", e.message)
    print("REASON", e.detail["reason"])  # what ddst run recognizes, to go on without graphs
"""
    out = subprocess.run([sys.executable, "-c", code], env=worker_env(), capture_output=True, text=True, timeout=300)
    assert "REFUSED capturing the D step as a CUDA graph failed" in out.stdout, out.stdout + out.stderr
    assert "set train.cudaGraphs to false" in out.stdout
    assert "REASON capture" in out.stdout


def test_a_new_build_frees_the_graphed_one_at_once():
    """The graphs hold their Gan weakly: a replaced build's networks, optimizer state and graph memory go
    when the new build takes their place, not when Python's cycle collector next runs."""
    s = build(True)
    train(s, 1, 4)  # past warm-up and capture
    assert s.gan.graphs.captures >= 2
    old = weakref.ref(s.gan)
    gc.disable()
    try:
        s.op_build(spec(True))
        assert old() is None
    finally:
        gc.enable()
