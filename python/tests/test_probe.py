"""What a BR probe does and does not change in training (docs/method.md, "The balance-ratio probe").

A probe draws no random numbers and leaves the G and D updates of its iteration untouched (fakePre is the
G step's own forward), but its two extra forwards run in training mode: they advance spectral norm's power
iteration in D and BatchNorm's running statistics in G. So sngan32 and dcgan28 with spectral norm (BN in G,
SN in D) leave a probed iteration with the same weights, optimizer states and random streams as an
unprobed one and different u vectors and running statistics; mlp2d, which has neither, trains bitwise
identically with or without probes."""

import numpy as np
import pytest
import torch

from ddst_worker.checkpoint import state_of
from ddst_worker.session import Session
from ddst_worker.spec_defaults import complete_build

TRAIN = {"batchSize": 4, "genBatchSize": 4, "nCritic": 2, "loss": "hinge", "lrG": 2e-4, "lrD": 2e-4, "betas": [0.0, 0.9],
         "ema": 0.999}
MODELS = {
    "sngan32": ({"name": "sngan32", "gChannels": 16, "dChannels": 16, "latentDim": 16}, [3, 32, 32]),
    "dcgan28": ({"name": "dcgan28", "width": 4, "latentDim": 8, "spectralNorm": True}, [1, 28, 28]),
    "mlp2d": ({"name": "mlp2d", "hidden": 32, "depth": 2}, None),
}


def session(model: str, loss: str = "hinge") -> Session:
    cfg, shape = MODELS[model]
    data = {"name": "ring8"} if shape is None else {"name": "synthetic", "shape": shape}
    s = Session()
    s.op_build(complete_build({"seed": 3, "device": "cpu", "model": cfg, "data": data, "train": {**TRAIN, "loss": loss}}))
    # Half of every maskable layer, so the masked step (gradient masking) is part of what is compared.
    s.op_setMasks({net: {l.name: 0.5 for l in m.layers}
                   for net, m in (("generator", s.gan.masks_g), ("discriminator", s.gan.masks_d))})
    return s


def train(s: Session, start: int, iterations: int, probe_every: int):
    _, tensors = s.handle("train", {"start": start, "iterations": iterations, "probeEvery": probe_every}, {})
    return dict(tensors)


def equal(a, b) -> bool:
    """Bitwise equality of nested state (dicts, lists, tensors, plain values)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b


def split(model: torch.nn.Module, state: dict) -> tuple[dict, dict]:
    """A model's state_dict split into parameters and buffers."""
    params = {n for n, _ in model.named_parameters()}
    return ({k: v for k, v in state.items() if k in params}, {k: v for k, v in state.items() if k not in params})


@pytest.mark.parametrize("model", ["sngan32", "dcgan28", "mlp2d"])
def test_one_probed_iteration_updates_like_an_unprobed_one(model):
    plain, probed = session(model), session(model)
    train(plain, 1, 2, 0)  # warm both up identically: Adam moments, u vectors, running statistics
    train(probed, 1, 2, 0)
    assert equal(state_of(plain), state_of(probed))
    a, b = train(plain, 3, 1, 0), train(probed, 3, 1, 1)
    assert a["probes"].shape == (0, 4) and b["probes"].shape == (1, 4)
    assert np.array_equal(a["losses"], b["losses"])
    sa, sb = state_of(plain), state_of(probed)
    assert equal(sa["rng"], sb["rng"])  # data, noise, mask and global streams: the probe drew nothing
    assert equal(sa["ema"], sb["ema"])  # the EMA copied G's buffers at the G step, before the probe
    differ = {}
    for net, module in (("generator", plain.gan.G), ("discriminator", plain.gan.D)):
        na, nb = sa["nets"][net], sb["nets"][net]
        assert equal(na["optimizer"], nb["optimizer"]), net
        assert equal(na["masks"], nb["masks"]), net
        pa, ba = split(module, na["model"])
        pb, bb = split(module, nb["model"])
        assert pa and equal(pa, pb), net  # weights (weight_orig under spectral norm), biases, BN affine
        differ[net] = sorted(k for k in ba if not torch.equal(ba[k], bb[k]))
    if model == "mlp2d":
        assert differ == {"generator": [], "discriminator": []}
        return
    # The probe's forwards in training mode: D's power iteration (u, v) and G's BN statistics moved.
    # (A layer with one output, D's last Linear, has a u of one element: always +-1, never moving.)
    u = [k for k, v in split(plain.gan.D, sa["nets"]["discriminator"]["model"])[1].items() if k.endswith("weight_u") and v.numel() > 1]
    assert u and set(u) <= set(differ["discriminator"])
    assert all(k.endswith(("weight_u", "weight_v")) for k in differ["discriminator"])
    running_mean = [k for k in split(plain.gan.G, sa["nets"]["generator"]["model"])[1] if k.endswith("running_mean")]
    assert running_mean and set(running_mean) <= set(differ["generator"])
    assert all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in differ["generator"])


def test_mlp2d_trains_bitwise_identically_with_or_without_probes():
    never, always = session("mlp2d"), session("mlp2d")
    a, b = train(never, 1, 12, 0), train(always, 1, 12, 1)
    assert b["probes"].shape == (12, 4) and np.isfinite(b["probes"]).all()
    assert np.array_equal(a["losses"], b["losses"])
    assert equal(state_of(never), state_of(always))


@pytest.mark.parametrize("model", ["sngan32", "dcgan28", "mlp2d"])
@pytest.mark.parametrize("loss", ["hinge", "wasserstein"])
def test_fake_pre_is_the_g_steps_own_forward(model, loss):
    """G's loss under hinge and wasserstein is -mean D(G(z)) on that forward: fakePre is exactly its negative."""
    s = session(model, loss)
    out = train(s, 1, 6, 2)
    losses = {int(r[0]): r for r in out["losses"]}
    assert list(out["probes"][:, 0]) == [2, 4, 6]
    for it, fake_pre, fake_post, real in out["probes"]:
        assert fake_pre == -losses[int(it)][2]
        assert fake_post != fake_pre and np.isfinite(real)


@pytest.mark.parametrize("probe_every", [0, 1])
def test_a_probe_adds_two_forwards_and_no_other_pass(probe_every):
    """Per iteration: each D step runs G once (fakes) and D twice (real, fake); the G step runs each once; a
    probe adds exactly one G forward (G_post(z)) and two D forwards (G_post(z), the last real batch)."""
    s = session("dcgan28")
    calls = {"G": 0, "D": 0}
    for name in calls:
        getattr(s.gan, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    train(s, 1, 1, probe_every)
    n = TRAIN["nCritic"]
    assert calls == {"G": n + 1 + probe_every, "D": 2 * n + 1 + 2 * probe_every}
