"""Session ops in-process: determinism, probe semantics, masks kept through training."""

import copy
import gc
import weakref

import numpy as np
import pytest
import torch

from ddst_worker.errors import WorkerError
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

BUILD = {"seed": 7, "device": "cpu", "model": {"name": "mlp2d", "hidden": 32, "depth": 2},
         "data": {"name": "ring8"},
         "train": {"batchSize": 32, "genBatchSize": 32, "nCritic": 2, "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3,
                   "betas": [0.5, 0.9], "ema": 0.999}}
MASKS = {"generator": {"net.0": 0.5, "net.2": 0.3, "net.4": 0.5}, "discriminator": {"net.2": 0.4}}


def session(seed=7, loss="hinge", data="ring8"):
    s = Session()
    s.op_build(complete_build({**BUILD, "seed": seed, "data": {"name": data},
                "train": {**BUILD["train"], "loss": loss}}))
    s.op_setMasks(MASKS)
    return s


def script(s):
    """A little of everything, returning what must be reproducible."""
    _, t1 = s.handle("train", {"start": 1, "iterations": 20, "probeEvery": 5}, {})
    s.op_dstStep({"net": "generator", "dropRate": 0.3, "prune": "global_magnitude", "growth": "global_gradient", "alpha": 0.5})
    s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "set", "growth": "random", "alpha": 0.5})
    s.op_setDensity({"net": "discriminator", "target": 0.6, "growth": "global_gradient"})
    _, t2 = s.handle("train", {"start": 21, "iterations": 10, "probeEvery": 5}, {})
    masks = [l.mask.clone() for m in (s.gan.masks_g, s.gan.masks_d) for l in m.layers]
    return dict(t1)["losses"], dict(t1)["probes"], dict(t2)["losses"], masks


def test_same_seed_same_losses_and_masks():
    a, b, c = script(session(7)), script(session(7)), script(session(8))
    for x, y in zip(a[:3], b[:3]):
        assert np.array_equal(x, y)
    assert all(torch.equal(x, y) for x, y in zip(a[3], b[3]))
    assert not np.array_equal(a[0], c[0])
    assert not all(torch.equal(x, y) for x, y in zip(a[3], c[3]))


def test_losses_and_probes_layout_and_probe_semantics():
    s = session()
    result, tensors = s.handle("train", {"start": 11, "iterations": 20, "probeEvery": 7}, {})
    losses, probes = dict(tensors)["losses"], dict(tensors)["probes"]
    assert result == {"end": 30, "iterations": 20, "interrupted": False} and s.iter == 30
    assert losses.dtype == np.float64 and losses.shape == (20, 3) and list(losses[:, 0]) == list(range(11, 31))
    assert probes.dtype == np.float64 and probes.shape == (3, 4) and list(probes[:, 0]) == [14, 21, 28]
    assert np.isfinite(losses).all() and np.isfinite(probes).all()
    # hinge G loss is -mean D(G_pre(z)) on the same z the probe used
    rows = {int(r[0]): r for r in losses}
    for it, fake_pre, fake_post, real in probes:
        assert rows[int(it)][2] == pytest.approx(-fake_pre, rel=1e-5, abs=1e-6)
        assert fake_post != fake_pre


def test_probing_does_not_change_training():
    a, b = session(), session()
    _, ta = a.handle("train", {"start": 1, "iterations": 15, "probeEvery": 0}, {})
    _, tb = b.handle("train", {"start": 1, "iterations": 15, "probeEvery": 3}, {})
    assert np.array_equal(dict(ta)["losses"], dict(tb)["losses"])
    assert dict(ta)["probes"].shape == (0, 4)


@pytest.mark.parametrize("loss", ["ns", "wasserstein"])
def test_other_losses_train_and_keep_masks(loss):
    s = session(loss=loss, data="grid25")
    s.handle("train", {"start": 1, "iterations": 5, "probeEvery": 2}, {})
    for m in (s.gan.masks_g, s.gan.masks_d):
        for l in m.layers:
            assert (l.weight.detach()[~l.mask] == 0).all()
            st = m.optimizer.state[l.weight]
            assert (st["exp_avg"][~l.mask] == 0).all() and (st["exp_avg_sq"][~l.mask] == 0).all()
    stats = s.op_stats({})
    assert stats["generator"]["layers"][1]["active"] == round(0.3 * 32 * 32)


def test_sample_is_seeded_and_shaped():
    s = session()
    _, a = s.op_sample({"n": 9, "seed": 3, "batchSize": 100, "batchNorm": "batch"})
    _, b = s.op_sample({"n": 9, "seed": 3, "batchSize": 100, "batchNorm": "batch"})
    _, c = s.op_sample({"n": 9, "seed": 4, "batchSize": 100, "batchNorm": "batch"})
    a, b, c = (dict(x)["samples"] for x in (a, b, c))
    assert a.shape == (9, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_data_streams_match_their_description():
    s = Session()
    s.op_build(complete_build({**BUILD, "data": {"name": "grid25"}}))
    data = s.gan.data
    assert data.centers.shape == (25, 2) and data.std == 0.05
    assert sorted(set(data.centers[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    x = data.sample(2000).numpy()
    nearest = ((x[:, None, :] - data.centers.numpy()[None]) ** 2).sum(-1).min(1)
    assert np.sqrt(nearest).max() < 0.05 * 6
    s.op_build(complete_build({**BUILD, "data": {"name": "ring8", "radius": 3.0}}))
    assert np.allclose(np.linalg.norm(s.gan.data.centers.numpy(), axis=1), 3.0)


def test_bad_values_and_not_built():
    s = Session()
    with pytest.raises(WorkerError) as e:
        s.op_stats({})
    assert e.value.code == "not_built"
    s = session()
    cases = [("setMasks", {"generator": {"nope": 0.5}, "discriminator": {}}),
             ("setMasks", {"generator": {"net.0": 1.5}, "discriminator": {}}),
             ("dstStep", {"net": "critic", "dropRate": 0.1, "prune": "set", "growth": "random", "alpha": 0.5}),
             ("setDensity", {"net": "generator", "target": 1.5, "growth": "global_random"}),
             ("build", {**complete_build(BUILD), "model": {"name": "resnet9000"}})]
    if not torch.cuda.is_available():
        cases.append(("build", complete_build({**BUILD, "device": "cuda"})))
    for op, args in cases:
        with pytest.raises(WorkerError) as e:
            s.handle(op, args, {})
        assert e.value.code == "bad_value", (op, args)
    assert s.gan.masks_g.by_name["net.0"].active == 32  # the failed setMasks changed nothing


# ---- build reply: dataShape and per-parameter MACs

def test_build_reply_data_shape_and_macs_mlp2d():
    s = Session()
    r = s.op_build(complete_build(BUILD))
    assert r["dataShape"] == [2] and r["latentDim"] == 2
    rows = {(l["net"], l["name"]): l["macs"] for l in r["layers"]}
    h = 32  # G: 2 -> h -> h -> 2; D: 2 -> h -> h -> 1; every Linear has a bias
    assert rows[("generator", "net.0")] == 2 * h and rows[("generator", "net.0.bias")] == h
    assert rows[("generator", "net.2")] == h * h and rows[("discriminator", "net.4.bias")] == 1
    g = 2 * h + h + h * h + h + h * 2 + 2
    d = 2 * h + h + h * h + h + h * 1 + 1
    assert sum(l["macs"] for l in r["layers"] if l["net"] == "generator") == g
    assert sum(l["macs"] for l in r["layers"] if l["net"] == "discriminator") == d
    from ddst_worker.flops import layer_macs
    assert layer_macs(s.gan.G, (2,)).total == g and layer_macs(s.gan.D, (2,)).total == d


def test_build_reply_says_which_execution_settings_apply():
    """The CPU applies none of them, whatever the train block asks (the orchestrator's suspect for a worker that
    keeps dying is only ever a setting the worker applied)."""
    train = {"cudaGraphs": True, "channelsLast": True, "compile": True}
    r = Session().op_build(complete_build({**BUILD, "train": {**BUILD.get("train", {}), **train}}))
    assert r["execution"] == {"cudaGraphs": False, "channelsLast": False, "compile": False}


def test_synthetic_data_is_seeded_images_in_range():
    args = {**BUILD, "model": {"name": "dcgan28", "width": 4}, "data": {"name": "synthetic", "shape": [1, 28, 28]}}
    a, b = Session(), Session()
    assert a.op_build(complete_build(args))["dataShape"] == [1, 28, 28]
    b.op_build(complete_build(args))
    x = a.gan.data.sample(5)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.3
    assert torch.equal(x, b.gan.data.sample(5)) and not torch.equal(x, a.gan.data.sample(5))


# ---- dense runs and G's own batch size

def count_masked_fills(monkeypatch):
    calls = []
    original = torch.Tensor.masked_fill_

    def counting(self, *a, **kw):
        calls.append(self.shape)
        return original(self, *a, **kw)

    monkeypatch.setattr(torch.Tensor, "masked_fill_", counting)
    return calls


def test_dense_run_does_no_mask_work_and_matches_density_one(monkeypatch):
    never = Session()
    never.op_build(complete_build(BUILD))
    ones = Session()
    ones.op_build(complete_build(BUILD))
    ones.op_setMasks({net: {n: 1.0 for n in ("net.0", "net.2", "net.4")} for net in ("generator", "discriminator")})
    calls = count_masked_fills(monkeypatch)
    _, a = never.handle("train", {"start": 1, "iterations": 5, "probeEvery": 2}, {})
    assert calls == []  # never masked: not one mask operation in training
    _, b = ones.handle("train", {"start": 1, "iterations": 5, "probeEvery": 2}, {})
    assert calls == [] and np.array_equal(dict(a)["losses"], dict(b)["losses"])  # full masks are skipped too
    stats = never.op_stats({})
    assert stats["generator"]["density"] == 1 and stats["discriminator"]["density"] == 1
    assert stats["generator"]["itop"] == 1
    s = session()  # masked: one fill per sparse layer per optimizer step
    calls.clear()
    s.handle("train", {"start": 1, "iterations": 1, "probeEvery": 0}, {})
    assert len(calls) == BUILD["train"]["nCritic"] * 1 + 3  # D has one sparse layer, G three


def test_gen_batch_size_drives_the_g_step_and_its_growth_gradient():
    s = Session()
    s.op_build(complete_build({**BUILD, "train": {**BUILD["train"], "batchSize": 8, "genBatchSize": 12}}))
    sizes = []
    z, sample = s.gan.z, s.gan.data.sample
    s.gan.z = lambda n: sizes.append(("z", n)) or z(n)
    s.gan.data.sample = lambda n: sizes.append(("x", n)) or sample(n)
    s.handle("train", {"start": 1, "iterations": 1, "probeEvery": 1}, {})
    assert sizes == [("x", 8), ("z", 8), ("x", 8), ("z", 8), ("z", 12)]  # nCritic 2 D steps, then G
    sizes.clear()
    s.op_dstStep({"net": "generator", "dropRate": 0.2, "prune": "magnitude", "growth": "gradient", "alpha": 0.5})
    assert sizes == [("z", 12)]
    sizes.clear()
    s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "magnitude", "growth": "gradient", "alpha": 0.5})
    assert sizes == [("x", 8), ("z", 8)]


def test_hybrid_growth_through_the_op_keeps_counts():
    s = session()
    before = s.op_stats({})["generator"]
    r = s.op_dstStep({"net": "generator", "dropRate": 0.4, "prune": "magnitude", "growth": "hybrid", "alpha": 0.25})
    assert r["pruned"] == r["grown"] > 0 and r["active"] == before["active"]
    after = s.op_stats({})["generator"]
    assert [l["active"] for l in after["layers"]] == [l["active"] for l in before["layers"]]
    d_active = s.gan.masks_d.active()
    r = s.op_dstStep({"net": "discriminator", "dropRate": 0.4, "prune": "global_magnitude", "growth": "global_hybrid", "alpha": 0.5})
    assert r["pruned"] == r["grown"] > 0 and r["active"] == d_active
    with pytest.raises(WorkerError):
        s.op_dstStep({"net": "generator", "dropRate": 0.4, "prune": "magnitude", "growth": "hybrid", "alpha": 2})


# ---- the generator's EMA

def ema_pairs(s):
    """(G's maskable weight, the EMA's, mask) per layer."""
    from ddst_worker.masking import maskable_layers
    return [(l.weight, w, l.mask) for l, (_, w) in zip(s.gan.masks_g.layers, maskable_layers(s.gan.ema.model))]


def test_ema_update_rule_and_sparse_ema_at_every_g_mask_change():
    s = session()
    decay = s.gan.ema.decay
    assert decay == 0.999  # the default when train.ema is left out
    s.handle("train", {"start": 1, "iterations": 3, "probeEvery": 0}, {})
    before = [p.detach().clone() for p in s.gan.ema.model.parameters()]
    s.handle("train", {"start": 4, "iterations": 1, "probeEvery": 0}, {})
    for old, new, w in zip(before, s.gan.ema.model.parameters(), s.gan.G.parameters()):
        assert torch.allclose(new, decay * old + (1 - decay) * w.detach(), rtol=0, atol=1e-7)
    assert any(not torch.equal(e, w) for e, w in zip(s.gan.ema.model.parameters(), s.gan.G.parameters()))

    def check():
        for w, e, m in ema_pairs(s):
            assert (e[~m] == 0).all() and (w.detach()[~m] == 0).all()
    check()
    s.op_dstStep({"net": "generator", "dropRate": 0.5, "prune": "global_magnitude", "growth": "global_gradient", "alpha": 0.5})
    check()
    s.handle("train", {"start": 5, "iterations": 3, "probeEvery": 0}, {})
    s.op_setDensity({"net": "generator", "target": 0.2, "growth": "global_gradient"})
    check()
    s.op_setMasks({"generator": {"net.2": 0.1}, "discriminator": {}})
    check()
    s.handle("train", {"start": 8, "iterations": 2, "probeEvery": 0}, {})
    check()


def test_ema_copies_buffers_and_sample_uses_it():
    args = {**BUILD, "model": {"name": "dcgan28", "width": 4, "latentDim": 8},
            "data": {"name": "synthetic", "shape": [1, 28, 28]}, "train": {**BUILD["train"], "batchSize": 4, "genBatchSize": 4}}
    s = Session()
    s.op_build(complete_build(args))
    s.handle("train", {"start": 1, "iterations": 2, "probeEvery": 0}, {})
    for b, g in zip(s.gan.ema.model.buffers(), s.gan.G.buffers()):
        assert torch.equal(b, g)  # BN running stats as of the last G step
    buffers = [b.clone() for b in s.gan.ema.model.buffers()]
    sample = lambda mode, batch=10, n=3: dict(s.op_sample({"n": n, "seed": 5, "batchSize": batch, "batchNorm": mode})[1])["samples"]
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        by_batch, by_running = sample("batch"), sample("running")
        assert torch.equal(by_batch, sample("batch"))
        # "running": eval mode, BatchNorm by the running averages; the last forward draws only what is left.
        assert torch.equal(by_running, s.gan.ema.model(z))
        assert not torch.equal(by_running, s.gan.G.eval()(z))
        # "batch": BatchNorm by the statistics of the batch drawn (training mode), as the reference code samples,
        # always a whole batch of batchSize: 3 samples are the first 3 of a batch of 10.
        ema_train = copy.deepcopy(s.gan.ema.model).train()
        z10 = torch.randn(10, 8, generator=torch.Generator().manual_seed(5))
        assert torch.equal(by_batch, ema_train(z10)[:3])
        assert not torch.allclose(by_batch, by_running)
        # ... so the first k of n samples are the same for every n >= k, across whole batches too.
        assert torch.equal(sample("batch", n=13)[:3], by_batch) and torch.equal(sample("batch", n=13), sample("batch", n=20)[:13])
        # ... and a batch of 1 normalizes each sample by its own statistics.
        z1 = torch.randn(1, 8, generator=torch.Generator().manual_seed(5))
        assert torch.equal(sample("batch", 1)[:1], copy.deepcopy(s.gan.ema.model).train()(z1))
    # Neither moves the running averages, nor leaves the EMA out of eval mode.
    assert all(torch.equal(a, b) for a, b in zip(buffers, s.gan.ema.model.buffers()))
    assert not s.gan.ema.model.training and all(m.track_running_stats for m in s.gan.ema.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    s.gan.G.train()
    assert s.gan.G.training and not s.gan.ema.model.training
    with pytest.raises(WorkerError, match="batchNorm"):
        s.op_sample({"n": 3, "seed": 5, "batchSize": 100, "batchNorm": "eval"})

    off = Session()
    off.op_build(complete_build({**args, "train": {**args["train"], "ema": None}}))
    assert off.gan.ema is None and off.gan.masks_g.layers[0].followers == []
    _, c = off.op_sample({"n": 3, "seed": 5, "batchSize": 100, "batchNorm": "running"})
    with torch.no_grad():
        assert torch.equal(dict(c)["samples"], off.gan.G.eval()(z))


def test_a_new_build_frees_the_old_one_at_once():
    """Nothing holds a replaced build in a reference cycle: its networks, optimizer state and data go when
    the new build takes their place, not when Python's cycle collector next runs (on a GPU: memory).
    test_cuda_graphs checks the same with the steps captured as CUDA graphs."""
    s = session()
    script(s)
    old, old_g = weakref.ref(s.gan), weakref.ref(s.gan.G)
    gc.disable()
    try:
        s.op_build(complete_build(BUILD))
        assert old() is None and old_g() is None
    finally:
        gc.enable()
