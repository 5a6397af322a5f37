"""Session ops in-process: determinism, probe semantics, masks kept through training."""

import numpy as np
import pytest
import torch

from ddst_worker.errors import WorkerError
from ddst_worker.session import Session

BUILD = {"seed": 7, "device": "cpu", "model": {"name": "mlp2d", "hidden": 32, "depth": 2},
         "data": {"name": "ring8"},
         "train": {"batchSize": 32, "nCritic": 2, "loss": "hinge", "lrG": 1e-3, "lrD": 1e-3, "betas": [0.5, 0.9]}}
MASKS = {"generator": {"net.0": 0.5, "net.2": 0.3, "net.4": 0.5}, "discriminator": {"net.2": 0.4}}


def session(seed=7, loss="hinge", data="ring8"):
    s = Session()
    s.op_build({**BUILD, "seed": seed, "data": {"name": data},
                "train": {**BUILD["train"], "loss": loss}})
    s.op_setMasks(MASKS)
    return s


def script(s):
    """A little of everything, returning what must be reproducible."""
    _, t1 = s.handle("train", {"start": 1, "iterations": 20, "probeEvery": 5}, {})
    s.op_dstStep({"net": "generator", "dropRate": 0.3, "prune": "global_magnitude", "growth": "global_gradient"})
    s.op_dstStep({"net": "discriminator", "dropRate": 0.2, "prune": "set", "growth": "random"})
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
    assert result == {"end": 30, "iterations": 20} and s.iter == 30
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
    _, a = s.op_sample({"n": 9, "seed": 3})
    _, b = s.op_sample({"n": 9, "seed": 3})
    _, c = s.op_sample({"n": 9, "seed": 4})
    a, b, c = (dict(x)["samples"] for x in (a, b, c))
    assert a.shape == (9, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_data_streams_match_their_description():
    s = Session()
    s.op_build({**BUILD, "data": {"name": "grid25"}})
    data = s.gan.data
    assert data.centers.shape == (25, 2) and data.std == 0.05
    assert sorted(set(data.centers[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    x = data.sample(2000).numpy()
    nearest = ((x[:, None, :] - data.centers.numpy()[None]) ** 2).sum(-1).min(1)
    assert np.sqrt(nearest).max() < 0.05 * 6
    s.op_build({**BUILD, "data": {"name": "ring8", "radius": 3.0}})
    assert np.allclose(np.linalg.norm(s.gan.data.centers.numpy(), axis=1), 3.0)


def test_bad_values_and_not_built():
    s = Session()
    with pytest.raises(WorkerError) as e:
        s.op_stats({})
    assert e.value.code == "not_built"
    s = session()
    cases = [("setMasks", {"generator": {"nope": 0.5}, "discriminator": {}}),
             ("setMasks", {"generator": {"net.0": 1.5}, "discriminator": {}}),
             ("dstStep", {"net": "critic", "dropRate": 0.1, "prune": "set", "growth": "random"}),
             ("setDensity", {"net": "generator", "target": 0.5, "growth": "random"}),
             ("build", {**BUILD, "model": {"name": "resnet9000"}})]
    if not torch.cuda.is_available():
        cases.append(("build", {**BUILD, "device": "cuda"}))
    for op, args in cases:
        with pytest.raises(WorkerError) as e:
            s.handle(op, args, {})
        assert e.value.code == "bad_value", (op, args)
    assert s.gan.masks_g.by_name["net.0"].active == 32  # the failed setMasks changed nothing
