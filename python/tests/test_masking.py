"""Mask kernels against brute-force references written in plain Python."""

import math

import pytest
import torch
from torch import nn

from ddst_worker.masking import MaskSet, count_for, maskable_layers, prune_set


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))


def masked(seed=0, densities=(0.5, 0.4, 0.6), with_adam=True):
    model = small_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if with_adam else None
    masks = MaskSet(model, opt)
    masks.set_densities(dict(zip(["0", "2", "4"], densities)), torch.Generator().manual_seed(seed))
    return model, opt, masks


def fill_moments(model, opt, value=1.0):
    """Give every weight Adam state (as after training) so resets are visible."""
    for p in model.parameters():
        opt.state[p] = {"step": torch.tensor(3.0), "exp_avg": torch.full_like(p, value),
                        "exp_avg_sq": torch.full_like(p, value)}


def flat(masks):
    """All entries as (layer, flat index, weight, active)."""
    return [(l.name, i, float(w), bool(m)) for l in masks.layers
            for i, (w, m) in enumerate(zip(l.weight.detach().flatten(), l.mask.flatten()))]


def active_set(masks):
    return {(l.name, i) for l in masks.layers for i in l.mask.flatten().nonzero().flatten().tolist()}


def check_invariants(masks, opt=None):
    for l in masks.layers:
        assert (l.weight.detach()[~l.mask] == 0).all(), f"{l.name}: weight outside mask"
        assert (l.ever_active | ~l.mask).all(), f"{l.name}: active weight missing from ITOP"
        if opt is not None and l.weight in opt.state:
            for key in ("exp_avg", "exp_avg_sq"):
                assert (opt.state[l.weight][key][~l.mask] == 0).all(), f"{l.name}: {key} outside mask"


def ref_lowest(entries, k):
    """k entries with the smallest score; ties to the earlier entry (stable)."""
    return {e[0] for e in sorted(entries, key=lambda e: e[1])[:k]}


def ref_highest(entries, k):
    return {e[0] for e in sorted(entries, key=lambda e: -e[1])[:k]}


def test_count_for_rounds_half_up_and_clamps():
    assert [count_for(d, n) for d, n in [(0.5, 5), (0.5, 3), (0.1, 10), (0.25, 2), (0, 9), (1, 9), (1.2, 4)]] == \
        [3, 2, 1, 1, 0, 9, 4]


def test_maskable_weights_plain_and_spectral_norm_both_flavours():
    plain = small_model()
    assert [n for n, _ in maskable_layers(plain)] == ["0", "2", "4"]
    hooked = nn.Sequential(nn.utils.spectral_norm(nn.Conv2d(3, 4, 3)), nn.ReLU(), nn.utils.spectral_norm(nn.Linear(4, 1)))
    assert [(n, w is m.weight_orig) for (n, w), m in zip(maskable_layers(hooked), [hooked[0], hooked[2]])] == \
        [("0", True), ("2", True)]
    param = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.ConvTranspose2d(4, 2, 4)),
                          nn.BatchNorm2d(2), nn.utils.parametrizations.spectral_norm(nn.Linear(3, 3)))
    layers = maskable_layers(param)
    assert [n for n, _ in layers] == ["0", "2"]
    assert layers[0][1] is param[0].parametrizations.weight.original
    # masking the stored weight zeroes the normalized weight the forward uses
    masks = MaskSet(param)
    masks.set_densities({"0": 0.3, "2": 0.5}, torch.Generator().manual_seed(0))
    assert (param[0].weight[~masks.by_name["0"].mask] == 0).all()
    assert masks.by_name["2"].active == 5


def test_set_densities_exact_counts_random_and_seeded():
    _, _, a = masked(seed=1)
    _, _, b = masked(seed=1)
    _, _, c = masked(seed=2)
    assert [l.active for l in a.layers] == [count_for(0.5, 42), count_for(0.4, 35), count_for(0.6, 15)]
    assert active_set(a) == active_set(b) != active_set(c)
    check_invariants(a)
    assert a.stats()["itop"] == a.density()


def after_step(before, removed, grown):
    """The active set a DST step must leave: the reference's rule, where a weight dropped and grown again in the
    same step stays."""
    return (before - removed) | grown


def test_magnitude_prune_and_per_layer_random_growth_match_brute_force():
    model, opt, masks = masked()
    fill_moments(model, opt)
    masks.apply()
    entries = flat(masks)
    weights = {(n, i): w for n, i, w, _ in entries}
    before = active_set(masks)
    pruned, grown, regrown = masks.dst_step(0.3, "magnitude", "random", None, torch.Generator().manual_seed(0), 0.5)
    u = replay_uniform(masks, 0)
    removed, chosen = set(), set()
    for name in ["0", "2", "4"]:
        layer_active = [((n, i), abs(w)) for n, i, w, m in entries if n == name and m]
        k = count_for(0.3, len(layer_active))
        dropped = ref_lowest(layer_active, k)
        removed |= dropped
        # candidates: inactive after the drop, the weights just dropped included
        candidates = [(n, i) for n, i, _, m in entries if n == name and (not m or (n, i) in dropped)]
        chosen |= ref_highest([(e, float(u[name][e[1]])) for e in candidates], k)
    after = active_set(masks)
    assert after == after_step(before, removed, chosen)
    assert pruned == grown == len(removed) and regrown == len(chosen & removed) > 0
    for n, i in after - before:  # arrivals: at 0 with 0 moments
        layer = masks.by_name[n]
        assert layer.weight.detach().flatten()[i] == 0
        assert opt.state[layer.weight]["exp_avg"].flatten()[i] == 0
        assert opt.state[layer.weight]["exp_avg_sq"].flatten()[i] == 0
    for n, i in before & after:  # survivors, the regrown among them, keep their values and moments
        layer = masks.by_name[n]
        assert layer.weight.detach().flatten()[i] == weights[(n, i)] != 0
        assert opt.state[layer.weight]["exp_avg"].flatten()[i] == 1
    for name in ["0", "2", "4"]:  # per-layer growth refills each layer with what it lost
        assert sum(n == name for n, _ in after) == sum(n == name for n, _ in before)
    check_invariants(masks, opt)


def test_global_magnitude_prune_and_global_gradient_growth_match_brute_force():
    model, opt, masks = masked(seed=3)
    entries = flat(masks)
    before = active_set(masks)
    grads = {l.name: torch.randn(l.weight.shape, generator=torch.Generator().manual_seed(7 + j))
             for j, l in enumerate(masks.layers)}
    k = count_for(0.4, masks.active())
    pruned, grown, regrown = masks.dst_step(0.4, "global_magnitude", "global_gradient", lambda: grads,
                                            torch.Generator(), 0.5)
    removed = ref_lowest([((n, i), abs(w)) for n, i, w, m in entries if m], k)
    candidates = [(n, i) for n, i, w, m in entries if not m or (n, i) in removed]
    chosen = ref_highest([((n, i), abs(float(grads[n].flatten()[i]))) for n, i in candidates], k)
    after = active_set(masks)
    assert after == after_step(before, removed, chosen)
    assert (pruned, grown, regrown) == (k, k, len(chosen & removed))
    assert len(after) == len(before)
    check_invariants(masks, opt)


def test_per_layer_gradient_growth_matches_brute_force():
    model, opt, masks = masked(seed=4)
    entries = flat(masks)
    before = active_set(masks)
    grads = {l.name: torch.randn(l.weight.shape) for l in masks.layers}
    masks.dst_step(0.5, "magnitude", "gradient", lambda: grads, torch.Generator(), 0.5)
    removed, chosen = set(), set()
    for name in ["0", "2", "4"]:
        act = [((n, i), abs(w)) for n, i, w, m in entries if n == name and m]
        k = count_for(0.5, len(act))
        dropped = ref_lowest(act, k)
        removed |= dropped
        chosen |= ref_highest([((n, i), abs(float(grads[n].flatten()[i])))
                               for n, i, w, m in entries if n == name and (not m or (n, i) in dropped)], k)
    assert active_set(masks) == after_step(before, removed, chosen) and len(active_set(masks)) == len(before)


def test_set_prune_splits_between_negatives_closest_to_zero_and_smallest_positives():
    model, opt, masks = masked(seed=5, densities=(1.0, 1.0, 1.0))
    entries = flat(masks)
    counts = [count_for(0.3, l.active) for l in masks.layers]
    removed = prune_set(masks.layers, counts)
    for name, k, idx in zip(["0", "2", "4"], counts, removed):
        act = [(i, w) for n, i, w, m in entries if n == name and m]
        neg = [(i, -w) for i, w in act if w < 0]   # lowest -w = negative closest to zero
        pos = [(i, w) for i, w in act if w >= 0]
        k_neg = min(k // 2, len(neg))
        k_pos = k - k_neg
        assert set(idx.tolist()) == ref_lowest(neg, k_neg) | ref_lowest(pos, k_pos)
    # Dense layers: the only candidates for growth are the weights just dropped, so the step changes nothing.
    weights = [l.weight.detach().clone() for l in masks.layers]
    pruned, grown, regrown = masks.dst_step(0.3, "set", "random", None, torch.Generator().manual_seed(1), 0.5)
    assert pruned == grown == regrown == sum(counts)
    assert all(torch.equal(w, l.weight.detach()) and bool(l.mask.all()) for w, l in zip(weights, masks.layers))


def test_set_prune_when_one_sign_runs_short():
    model = nn.Sequential(nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[-0.1, 0.5, 0.2, 0.3], [0.4, 0.6, 0.7, 0.8]]))
    masks = MaskSet(model)
    (idx,) = prune_set(masks.layers, [4])  # k=4, one negative
    assert sorted(idx.tolist()) == [0, 2, 3, 4]  # -0.1 and the 3 smallest positives


def test_ties_go_to_lower_index():
    model = nn.Sequential(nn.Linear(3, 4, bias=False))
    nn.init.constant_(model[0].weight, 0.5)
    masks = MaskSet(model)
    masks.set_density(0.5, "global_random", None, torch.Generator())
    assert masks.layers[0].mask.flatten().tolist() == [False] * 6 + [True] * 6


def test_random_growth_counts_candidates_and_seed():
    def run(seed):
        model, opt, masks = masked(seed=6)
        before = active_set(masks)
        masks.dst_step(0.25, "magnitude", "global_random", None, torch.Generator().manual_seed(seed), 0.5)
        return before, active_set(masks), masks
    before, after, masks = run(0)
    assert len(after) == len(before)
    grown = after - before
    assert grown and all(masks.by_name[n].weight.detach().flatten()[i] == 0 for n, i in grown)
    assert run(0)[1] == after and run(1)[1] != after
    check_invariants(masks)


def test_set_density_down_by_global_magnitude_and_up_by_growth():
    model, opt, masks = masked(seed=8)
    fill_moments(model, opt, 2.0)
    masks.apply()
    total = masks.total()
    entries = flat(masks)
    want = count_for(0.2, total)
    pruned, grown = masks.set_density(0.2, "global_gradient", None, torch.Generator())
    assert (pruned, grown) == (masks.active() + pruned - want, 0) and masks.active() == want
    removed = ref_lowest([((n, i), abs(w)) for n, i, w, m in entries if m], pruned)
    assert {(n, i) for n, i, _, m in entries if m} - active_set(masks) == removed
    check_invariants(masks, opt)

    grads = {l.name: torch.randn(l.weight.shape) for l in masks.layers}
    entries = flat(masks)
    want_up = count_for(0.7, total)
    pruned, grown = masks.set_density(0.7, "global_gradient", lambda: grads, torch.Generator())
    assert (pruned, grown) == (0, want_up - want) and masks.active() == want_up
    expected = ref_highest([((n, i), abs(float(grads[n].flatten()[i]))) for n, i, w, m in entries if not m], grown)
    assert active_set(masks) - {(n, i) for n, i, _, m in entries if m} == expected
    for n, i in expected:
        assert opt.state[masks.by_name[n].weight]["exp_avg_sq"].flatten()[i] == 0
    check_invariants(masks, opt)
    assert masks.set_density(0.7, "global_random", None, torch.Generator()) == (0, 0)


def test_itop_is_the_union_of_every_mask_seen():
    model, opt, masks = masked(seed=9)
    seen = active_set(masks)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        masks.dst_step(0.3, "magnitude", "random", None, gen, 0.5)
        seen |= active_set(masks)
        check_invariants(masks)
    assert masks.stats()["itop"] == pytest.approx(len(seen) / masks.total())
    stats = masks.stats()
    assert stats["active"] == sum(l["active"] for l in stats["layers"]) and stats["total"] == 42 + 35 + 15


def test_a_dense_layer_regrows_what_it_dropped_and_so_stays_as_it_was():
    model, opt, masks = masked(seed=10, densities=(1.0, 0.9, 1.0))
    counts = [l.active for l in masks.layers]
    weights = [l.weight.detach().clone() for l in masks.layers]
    pruned, grown, regrown = masks.dst_step(
        0.5, "magnitude", "gradient", lambda: {l.name: torch.randn(l.weight.shape) for l in masks.layers},
        torch.Generator(), 0.5)
    assert [l.active for l in masks.layers] == counts
    dense_drops = count_for(0.5, counts[0]) + count_for(0.5, counts[2])
    assert pruned == grown and regrown >= dense_drops
    assert torch.equal(weights[0], masks.layers[0].weight.detach()) and torch.equal(weights[2], masks.layers[2].weight.detach())
    check_invariants(masks, opt)


def test_registry_models_mask_by_module_name_under_spectral_norm():
    from ddst_worker.errors import WorkerError
    from ddst_worker.models import build_model
    from ddst_worker.spec_defaults import complete_model

    G, D, latent = build_model(complete_model({"name": "dcgan28", "spectralNorm": True}), (1, 28, 28))
    masks = MaskSet(D)
    assert [l.name for l in masks.layers] == ["conv1", "conv2", "fc"]
    assert all(l.weight is m.weight_orig for l, m in zip(masks.layers, (D.conv1, D.conv2, D.fc)))
    masks.set_densities({"conv2": 0.1}, torch.Generator().manual_seed(0))
    with torch.no_grad():
        D(G(torch.randn(2, latent)))  # spectral norm recomputes `weight` from the masked weight_orig
    assert (D.conv2.weight[~masks.by_name["conv2"].mask] == 0).all()
    with pytest.raises(WorkerError) as e:
        build_model(complete_model({"name": "dcgan32"}), (1, 28, 28))
    assert e.value.code == "bad_value"


# ---- hybrid growth: round(alpha * k) by |gradient|, the rest uniformly at random among what is left

def half_up(x: float) -> int:
    return math.floor(x + 0.5)


def replay_uniform(masks, seed):
    """The uniform scores random growth draws: one per weight, layer by layer, from the mask generator."""
    gen = torch.Generator().manual_seed(seed)
    return {l.name: torch.rand(l.numel, generator=gen) for l in masks.layers}


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_global_hybrid_growth_matches_brute_force(alpha):
    model, opt, masks = masked(seed=11)
    entries = flat(masks)
    before = active_set(masks)
    grads = {l.name: torch.randn(l.weight.shape, generator=torch.Generator().manual_seed(20 + j))
             for j, l in enumerate(masks.layers)}
    k = count_for(0.5, masks.active())
    masks.dst_step(0.5, "global_magnitude", "global_hybrid", lambda: grads, torch.Generator().manual_seed(5), alpha)
    removed = ref_lowest([((n, i), abs(w)) for n, i, w, m in entries if m], k)
    inactive = [(n, i) for n, i, w, m in entries if not m or (n, i) in removed]  # after the drop
    by_grad = ref_highest([(e, abs(float(grads[e[0]].flatten()[e[1]]))) for e in inactive], half_up(alpha * k))
    u = replay_uniform(masks, 5)
    by_rand = ref_highest([(e, float(u[e[0]][e[1]])) for e in inactive if e not in by_grad], k - len(by_grad))
    assert active_set(masks) == after_step(before, removed, by_grad | by_rand)
    assert len(by_grad) == half_up(alpha * k) and len(active_set(masks)) == len(before)
    check_invariants(masks, opt)


def test_per_layer_hybrid_growth_matches_brute_force():
    alpha = 0.4
    model, opt, masks = masked(seed=12)
    entries = flat(masks)
    grads = {l.name: torch.randn(l.weight.shape) for l in masks.layers}
    masks.dst_step(0.5, "magnitude", "hybrid", lambda: grads, torch.Generator().manual_seed(9), alpha)
    u = replay_uniform(masks, 9)
    expected = set()
    for name in ["0", "2", "4"]:
        act = [((n, i), abs(w)) for n, i, w, m in entries if n == name and m]
        k = count_for(0.5, len(act))
        dropped = ref_lowest(act, k)
        inactive = [(n, i) for n, i, w, m in entries if n == name and (not m or (n, i) in dropped)]
        by_grad = ref_highest([(e, abs(float(grads[name].flatten()[e[1]]))) for e in inactive], half_up(alpha * k))
        by_rand = ref_highest([(e, float(u[name][e[1]])) for e in inactive if e not in by_grad], k - len(by_grad))
        expected |= after_step({a for a, _ in act}, dropped, by_grad | by_rand)
    assert active_set(masks) == expected
    check_invariants(masks, opt)


def test_hybrid_random_share_is_not_the_gradient_ranking():
    """With alpha 0.5 the second half is random: over seeds it differs from pure gradient growth."""
    grads = None
    outcomes = set()
    for seed in range(3):
        model, opt, masks = masked(seed=13)
        grads = grads or {l.name: torch.randn(l.weight.shape) for l in masks.layers}
        masks.dst_step(0.5, "global_magnitude", "global_hybrid", lambda: grads, torch.Generator().manual_seed(seed), 0.5)
        outcomes.add(frozenset(active_set(masks)))
    model, opt, masks = masked(seed=13)
    masks.dst_step(0.5, "global_magnitude", "global_gradient", lambda: grads, torch.Generator(), 0.5)
    assert len(outcomes) == 3 and frozenset(active_set(masks)) not in outcomes


# ---- followers (the generator's EMA) and the training path's bookkeeping

def test_followers_are_zeroed_outside_the_mask_and_at_grown_positions():
    model, opt, masks = masked(seed=14)
    shadow = small_model(99)  # a copy with different, all-nonzero weights
    masks.follow(shadow)
    following = [w for _, w in maskable_layers(shadow)]
    assert all((w.detach()[~l.mask] == 0).all() and (w.detach()[l.mask] != 0).all() for l, w in zip(masks.layers, following))
    before = [(l.mask.clone(), w.detach().clone()) for l, w in zip(masks.layers, following)]
    _, _, regrown = masks.dst_step(0.5, "magnitude", "random", None, torch.Generator().manual_seed(0), 0.5)
    assert regrown > 0
    for l, w, (was, old) in zip(masks.layers, following, before):
        w = w.detach()
        assert (w[~l.mask] == 0).all()  # outside the new mask
        assert (w[l.mask & ~was] == 0).all()  # arrivals restart at 0
        assert torch.equal(w[l.mask & was], old[l.mask & was])  # survivors, the regrown among them, are kept
    masks.set_density(0.4, "global_random", None, torch.Generator())
    for l, w in zip(masks.layers, following):
        assert (w.detach()[~l.mask] == 0).all() and (w.detach()[l.mask] != 0).any()


def test_sparse_layers_lists_exactly_the_layers_with_inactive_weights():
    model, opt, masks = masked(seed=15, densities=(1.0, 0.5, 1.0))
    assert [l.name for l in masks.sparse_layers] == ["2"]
    assert torch.equal(masks.by_name["2"].inactive, ~masks.by_name["2"].mask)
    masks.set_densities({"2": 1.0}, torch.Generator())
    assert masks.sparse_layers == []


def test_the_kernels_implement_exactly_the_protocols_criteria(schemas):
    """One definition of the criteria: the zod enums (src/vocabulary/criteria.ts), which reach the worker through
    schemas/request.schema.json; the kernels' tables name exactly those, and nothing else is accepted."""
    import json

    from ddst_worker.masking import GROWERS, PRUNERS
    from ddst_worker.validate import _branches

    root = json.loads((schemas / "request.schema.json").read_text())
    branches = _branches(root, root)

    def enum(op, field):
        node = branches[op]["properties"]["args"]["properties"][field]
        while "$ref" in node:
            node = root["$defs"][node["$ref"].split("/")[-1]]
        return set(node["enum"])

    assert set(PRUNERS) == enum("dstStep", "prune")
    assert set(GROWERS) == enum("dstStep", "growth")
    assert enum("setDensity", "growth") <= set(GROWERS)
    masks = MaskSet(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(ValueError, match="unknown prune criterion"):
        masks.dst_step(0.5, "largest", "random", None, torch.Generator(), 0.5)
    with pytest.raises(ValueError, match="unknown growth criterion"):
        masks.dst_step(0.5, "magnitude", "sideways", None, torch.Generator(), 0.5)
