"""The paper's networks (SNGAN 32/48, small DCGANs) and the per-layer MAC accounting of ddst_worker.flops."""

import torch
from torch import nn

from ddst_worker.flops import layer_macs, macs_at_density, maskable_count, maskable_weights
from ddst_worker.models import dcgan, sngan
from ddst_worker.spec_defaults import complete_build, complete_model

torch.manual_seed(0)


def _name(mod, shape) -> str:
    return f"{mod.__name__.rsplit('.', 1)[1]}{shape[1]}" if len(shape) == 3 else "mlp2d"


def build(mod, cfg: dict, shape):
    """mod's networks for `cfg` as `ddst run` sends it: every field it leaves out at the experiment file's
    default, the name the one for `shape` unless cfg gives one."""
    return mod.build(complete_model({"name": _name(mod, shape), **cfg}), shape)


# ---------------------------------------------------------------- maskable counts

def test_sngan32_maskable_counts_match_paper():
    G, D, latent = build(sngan, {}, (3, 32, 32))
    assert latent == 128
    assert maskable_count(G) == 4_266_752
    assert maskable_count(D) == 1_052_544
    # Under spectral norm the maskable tensor is weight_orig, and every D layer has it.
    names = [n for n, _ in maskable_weights(D)]
    assert names and all(n.endswith(".weight_orig") for n in names)
    assert len(names) == 3 + 3 + 2 + 2 + 1  # opt block, down block (with 1x1), two plain blocks, final linear
    params = dict(D.named_parameters())
    for n, p in maskable_weights(D):
        assert params[n] is p
    assert all(n.endswith(".weight") for n, _ in maskable_weights(G))
    # Biases and BN parameters are never maskable.
    assert not any("bn" in n or n.endswith("bias") for n, _ in maskable_weights(G))
    assert D.fc.bias is None


def test_sngan48_counts():
    G, D, _ = build(sngan, {}, (3, 48, 48))
    # Only the first Linear grows: 128 * 6*6*256 instead of 128 * 4*4*256.
    assert maskable_count(G) == 4_266_752 - 128 * 16 * 256 + 128 * 36 * 256 == 4_922_112
    assert maskable_count(D) == 1_052_544
    G, D, _ = build(sngan, {"variant": "resnet48"}, (3, 48, 48))
    g = 128 * 36 * 512 + (512 * 256 * 9 + 256 * 256 * 9 + 512 * 256) + (256 * 128 * 9 + 128 * 128 * 9 + 256 * 128) \
        + (128 * 64 * 9 + 64 * 64 * 9 + 128 * 64) + 64 * 3 * 9
    assert maskable_count(G) == g == 4_855_488
    d = (3 * 64 * 9 + 64 * 64 * 9 + 3 * 64) + sum(a * b * 9 + b * b * 9 + a * b for a, b in
                                                 [(64, 128), (128, 256), (256, 512), (512, 1024)]) + 1024
    assert maskable_count(D) == d


def test_parametrized_spectral_norm_is_found():
    lin = nn.utils.parametrizations.spectral_norm(nn.Linear(4, 3))
    net = nn.Sequential(lin, nn.ReLU(), nn.Conv2d(1, 2, 3))
    names = [n for n, _ in maskable_weights(net)]
    assert names == ["0.parametrizations.weight.original", "2.weight"]
    assert maskable_count(net) == 12 + 18


# ---------------------------------------------------------------- shapes

def test_output_shapes():
    n = 2
    cases = [
        (sngan, (3, 32, 32), {}),
        (sngan, (3, 48, 48), {}),
        (sngan, (3, 48, 48), {"variant": "resnet48"}),
        (dcgan, (1, 28, 28), {}),
        (dcgan, (1, 32, 32), {}),
        (dcgan, (3, 32, 32), {"spectralNorm": True}),
    ]
    for mod, shape, cfg in cases:
        G, D, latent = build(mod, cfg, shape)
        with torch.no_grad():
            x = G(torch.randn(n, latent))
            logits = D(x)
        assert tuple(x.shape) == (n, *shape), (mod.__name__, shape)
        assert float(x.abs().max()) <= 1.0  # tanh
        assert tuple(logits.shape) == (n,), (mod.__name__, shape)  # raw logits, shape [N]
        assert logits.dtype == torch.float32


def test_latent_override_and_name_check():
    G, _, latent = build(sngan, {"latentDim": 64}, (3, 32, 32))
    assert latent == 64 and G.fc.in_features == 64
    _, _, latent = build(dcgan, {}, (1, 28, 28))
    assert latent == 64
    _, _, latent = build(dcgan, {"latentDim": 16}, (1, 28, 28))
    assert latent == 16
    for mod, cfg, shape in [(sngan, {"name": "sngan48"}, (3, 32, 32)), (dcgan, {"name": "dcgan28"}, (1, 32, 32))]:
        try:
            build(mod, cfg, shape)
        except ValueError:
            pass
        else:
            raise AssertionError("resolution mismatch not rejected")


def test_spectral_norm_d_trains():
    G, D, latent = build(sngan, {}, (3, 32, 32))
    x = G(torch.randn(2, latent))
    D(x).mean().backward()
    for n, p in maskable_weights(D):
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    _, D, _ = build(dcgan, {"spectralNorm": True}, (1, 28, 28))
    assert all(n.endswith("weight_orig") for n, _ in maskable_weights(D))


# ---------------------------------------------------------------- flops on a hand-computable net

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)           # 5x5 -> 5x5
        self.bn = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)  # 5x5 -> 10x10
        self.gconv = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, bias=False)  # 10x10 -> 5x5
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        h = self.bn(self.conv(x))
        h = self.gconv(self.up(h))
        return self.fc(h.flatten(1))


def test_flops_tiny_closed_form():
    net = Tiny()
    rows = layer_macs(net, torch.randn(7, 2, 5, 5))  # only one sample is used
    by = {r["name"]: r for r in rows}
    assert list(by) == ["conv", "bn", "up", "gconv", "fc"]
    assert by["conv"] == {"name": "conv", "kind": "conv", "shape": [4, 2, 3, 3], "maskable": True,
                          "param": "conv.weight", "weightMacs": 2 * 4 * 9 * 25, "biasMacs": 4 * 25,
                          "macs": 2 * 4 * 9 * 25 + 4 * 25, "calls": 1}
    assert (by["bn"]["kind"], by["bn"]["maskable"]) == ("bn", False)
    assert by["bn"]["weightMacs"] == by["bn"]["biasMacs"] == 4 * 25
    # ConvTranspose: in*out*k*k*H_in*W_in (the input's spatial size), bias on the output.
    assert by["up"]["kind"] == "convT" and by["up"]["shape"] == [4, 2, 4, 4]
    assert (by["up"]["weightMacs"], by["up"]["biasMacs"]) == (4 * 2 * 16 * 25, 2 * 100)
    assert (by["gconv"]["weightMacs"], by["gconv"]["biasMacs"]) == (2 * 4 * 9 * 25 // 2, 0)
    assert (by["fc"]["weightMacs"], by["fc"]["biasMacs"]) == (100 * 3, 3)
    total = (2 * 4 * 9 * 25 + 4 * 25) + 2 * 4 * 25 + (4 * 2 * 16 * 25 + 200) + 2 * 4 * 9 * 25 // 2 + 303
    assert rows.total == total
    assert rows.weight_total == 1800 + 3200 + 900 + 300
    assert rows.fixed_total == total - rows.weight_total
    # density scaling touches only the maskable weight terms; keys may be module or parameter names
    half = macs_at_density(rows, {"conv": 0.5, "fc.weight": 0.0})
    assert half == total - 900 - 300
    # the shape-tuple form gives the same counts
    assert layer_macs(net, (2, 5, 5)).total == total


def test_flops_leave_state_untouched():
    G, D, latent = build(sngan, {}, (3, 32, 32))
    G.train()
    D.train()
    bn = G.blocks[0].bn1
    rm = bn.running_mean.clone()
    nbt = int(bn.num_batches_tracked)
    u = D.blocks[0].conv1.weight_u.clone()
    layer_macs(G, (latent,))
    layer_macs(D, (3, 32, 32))
    assert torch.equal(bn.running_mean, rm) and int(bn.num_batches_tracked) == nbt
    assert torch.equal(D.blocks[0].conv1.weight_u, u)
    assert G.training and D.training and bn.training


# ---------------------------------------------------------------- MAC totals of the paper's SNGAN (hand formula)

def sngan32_g_macs_by_hand():
    z, c, out = 128, 256, 3
    total = z * 4 * 4 * c + 4 * 4 * c                      # Linear weight + bias
    for s in (4, 8, 16):                                   # input side of each up-block; output side 2s
        S = 2 * s
        total += 2 * c * s * s                             # BN1 (scale + shift)
        total += c * c * 9 * S * S + c * S * S             # conv1 3x3 after upsample
        total += 2 * c * S * S                             # BN2
        total += c * c * 9 * S * S + c * S * S             # conv2 3x3
        total += c * c * S * S + c * S * S                 # shortcut 1x1 after upsample
    total += 2 * c * 32 * 32                               # final BN
    total += c * out * 9 * 32 * 32 + out * 32 * 32         # final conv 3x3
    return total


def sngan32_d_macs_by_hand():
    ch, cin = 128, 3
    total = cin * ch * 9 * 32 * 32 + ch * 32 * 32          # opt block conv1 at 32x32
    total += ch * ch * 9 * 32 * 32 + ch * 32 * 32          # opt block conv2 at 32x32 (then pool)
    total += cin * ch * 16 * 16 + ch * 16 * 16             # opt shortcut: pool, then 1x1 at 16x16
    total += 2 * (ch * ch * 9 * 16 * 16 + ch * 16 * 16)    # down block conv1, conv2 at 16x16 (then pool)
    total += ch * ch * 16 * 16 + ch * 16 * 16              # down shortcut: 1x1 at 16x16, then pool
    total += 2 * 2 * (ch * ch * 9 * 8 * 8 + ch * 8 * 8)    # two plain blocks, two convs each at 8x8
    total += ch                                            # Linear(128 -> 1), no bias
    return total


def dcgan28_macs_by_hand(latent=64, w=32):
    g = latent * 2 * w * 49 + 2 * w * 49                   # Linear
    g += 2 * 2 * w * 49                                    # BN0 at 7x7
    g += 2 * w * w * 16 * 7 * 7 + w * 14 * 14              # ConvT 7 -> 14 (input spatial 7x7)
    g += 2 * w * 14 * 14                                   # BN1 at 14x14
    g += w * 1 * 16 * 14 * 14 + 1 * 28 * 28                # ConvT 14 -> 28
    d = 1 * w * 16 * 14 * 14 + w * 14 * 14                 # Conv 28 -> 14
    d += w * 2 * w * 16 * 7 * 7 + 2 * w * 7 * 7            # Conv 14 -> 7
    d += 2 * w * 49 + 1                                    # Linear
    return g, d


def test_sngan32_mac_totals_by_hand():
    G, D, latent = build(sngan, {}, (3, 32, 32))
    g_rows = layer_macs(G, (latent,))
    d_rows = layer_macs(D, (3, 32, 32))
    print(f"sngan32 per-sample dense MACs: G {g_rows.total:,} (weights {g_rows.weight_total:,}), "
          f"D {d_rows.total:,} (weights {d_rows.weight_total:,})")
    assert g_rows.total == sngan32_g_macs_by_hand() == 1_683_553_280
    assert d_rows.total == sngan32_d_macs_by_hand() == 272_498_816
    # The paper's dense Table-3 total: 100k iterations, dis_batch 64, gen_batch 128, n_critic 5
    # -> G (64*5 + 3*128) samples, D (3*64*5 + 128) samples per D step, counted 5 times per iteration.
    dense = 100_000 * (g_rows.total * (64 * 5 + 3 * 128) + d_rows.total * (3 * 64 * 5 + 128) * 5)
    assert abs(dense / 2.67e17 - 1) < 0.005
    # every maskable weight appears in the rows, with its parameter name
    assert sorted(r["param"] for r in d_rows if r["maskable"]) == sorted(n for n, _ in maskable_weights(D))


def test_dcgan28_mac_totals_by_hand():
    G, D, latent = build(dcgan, {}, (1, 28, 28))
    g_rows = layer_macs(G, (latent,))
    d_rows = layer_macs(D, (1, 28, 28))
    print(f"dcgan28 per-sample dense MACs: G {g_rows.total:,}, D {d_rows.total:,}")
    assert (g_rows.total, d_rows.total) == dcgan28_macs_by_hand()


# ---------------------------------------------------------------- model specs: exactly the schema's keys

def test_model_specs_take_exactly_their_keys():
    from ddst_worker.models import mlp

    G, D, _ = build(sngan, {"name": "sngan32", "gChannels": 16, "dChannels": 8, "latentDim": 4,
                           "spectralNorm": False, "variant": "lottery"}, (3, 32, 32))
    assert maskable_count(G) == 4 * 4 * 4 * 16 + 3 * (16 * 16 * 9 * 2 + 16 * 16) + 16 * 3 * 9
    assert maskable_count(D) == (3 * 8 * 9 + 8 * 8 * 9 + 3 * 8) + (2 * 8 * 8 * 9 + 8 * 8) + 2 * 2 * 8 * 8 * 9 + 8
    assert not any(n.endswith("weight_orig") for n, _ in maskable_weights(D))
    G, D, latent = build(dcgan, {"name": "dcgan32", "width": 8, "latentDim": 3, "spectralNorm": True}, (3, 32, 32))
    assert latent == 3 and G.up1.out_channels == 8 and D.conv1.out_channels == 8
    bad = [(sngan, {"bottomWidth": 4}, (3, 32, 32)), (sngan, {"init": "xavier_uniform"}, (3, 32, 32)),
           (sngan, {"variant": "resnet48"}, (3, 32, 32)), (sngan, {"variant": "resnet48", "gChannels": 8}, (3, 48, 48)),
           (sngan, {"variant": "sngan"}, (3, 32, 32)), (dcgan, {"hidden": 8}, (1, 28, 28)),
           (mlp, {"width": 8}, (2,)), (mlp, {"hidden": 0}, (2,))]
    for mod, cfg, shape in bad:  # each a complete default spec with one bad field
        try:
            mod.build({**complete_model({"name": _name(mod, shape)}), **cfg}, shape)
        except ValueError:
            continue
        raise AssertionError(f"{mod.__name__} accepted {cfg}")


# ---------------------------------------------------------------- build's per-parameter MACs on sngan32

def test_sngan32_build_macs_sum_to_the_dense_totals_and_leave_state_alone():
    from ddst_worker.flops import parameter_macs
    from ddst_worker.session import Session, layer_table

    s = Session()
    r = s.op_build(complete_build({"seed": 1, "device": "cpu", "model": {"name": "sngan32"},
                    "data": {"name": "synthetic", "shape": [3, 32, 32]},
                    "train": {"batchSize": 2, "genBatchSize": 2, "nCritic": 1, "loss": "hinge", "lrG": 2e-4,
                              "lrD": 2e-4, "betas": [0, 0.9], "ema": 0.999}}))  # JSON's 0 for beta1, as the orchestrator sends it
    assert r["dataShape"] == [3, 32, 32]
    rows = {(l["net"], l["name"]): l for l in r["layers"]}
    assert sum(l["macs"] for l in r["layers"] if l["net"] == "generator") == 1_683_553_280
    assert sum(l["macs"] for l in r["layers"] if l["net"] == "discriminator") == 272_498_816
    by_module = {row["name"]: row for row in layer_macs(s.gan.G, (128,))}
    assert rows[("generator", "blocks.1.conv1")]["macs"] == by_module["blocks.1.conv1"]["weightMacs"] \
        == 256 * 256 * 9 * 16 * 16
    assert rows[("generator", "blocks.1.conv1.bias")]["macs"] == 256 * 16 * 16
    assert rows[("generator", "blocks.1.bn1.weight")]["macs"] == rows[("generator", "blocks.1.bn1.bias")]["macs"] \
        == 256 * 8 * 8
    assert rows[("discriminator", "fc")]["macs"] == 128 and ("discriminator", "fc.bias") not in rows
    assert all(l["macs"] > 0 for l in r["layers"])  # every parameter of these nets does work

    # measuring again changes nothing: BN statistics, spectral-norm vectors, random streams
    def snapshot():
        return ([t.clone() for t in s.gan.G.state_dict().values()] + [t.clone() for t in s.gan.D.state_dict().values()],
                torch.get_rng_state(), s.gan.noise.get_state(), s.gan.data.gen.get_state())
    s.handle("train", {"start": 1, "iterations": 1, "probeEvery": 0}, {})  # so BN stats and u are not initial
    before = snapshot()
    layer_table("generator", s.gan.G, (128,))
    layer_table("discriminator", s.gan.D, (3, 32, 32))
    after = snapshot()
    assert all(torch.equal(a, b) for a, b in zip(before[0], after[0]))
    assert all(torch.equal(a, b) for a, b in zip(before[1:], after[1:]))
    assert s.gan.G.training and s.gan.D.training
    assert sum(parameter_macs(s.gan.D, (3, 32, 32)).values()) == 272_498_816
