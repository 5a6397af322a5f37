"""Masks over a model's maskable weights and the prune / grow kernels of dynamic sparse training.

Maskable weights are the weights of Linear / Conv / ConvTranspose layers (under spectral norm, the
tensor the optimizer actually updates: `weight_orig` or `parametrizations.weight.original`).
Biases and normalization parameters stay dense. A layer is named by its module's qualified name.

Invariants after every operation:
  - weights outside the mask are exactly 0, and so are their Adam moments (so a masked gradient
    keeps them at 0 and the optimizer step leaves them at 0), and so are the entries of any tensor
    that follows the mask (the generator's EMA copy: the paper's sparse EMA);
  - the active count is exactly what was asked: counts are round-half-up(d * n), like JS Math.round.
A layer whose mask is full (every weight active: the state before any mask op, or density 1) needs no
enforcement, so training skips it: a network nobody masked trains exactly as a dense one, with no mask
work at all (`MaskSet.sparse_layers` lists the layers that need it).
Ties: every selection is an exact top-k by a *stable* sort of the score, so equal scores go to the
lower flat index first (layers in model order, each flattened row-major). No noise is added.
"""

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .adam import MOMENTS, Adam

MASKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
            nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def count_for(density: float, n: int) -> int:
    """Exact active count for a density: round half up (JS Math.round), clamped to [0, n]."""
    return min(n, max(0, math.floor(density * n + 0.5)))


def maskable_weight(module: nn.Module) -> torch.Tensor:
    """The parameter the optimizer updates for this module's weight (spectral norm renames it)."""
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    if hasattr(module, "weight_orig"):  # torch.nn.utils.spectral_norm (hook-based)
        return module.weight_orig
    return module.weight


def maskable_layers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, maskable_weight(m)) for name, m in model.named_modules() if isinstance(m, MASKABLE)]


# ---- selection: exact top-k among allowed entries of a flat score ---------------------------------

def top_k(score: torch.Tensor, allowed: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """Flat indices of the k highest (or lowest) scores among `allowed`; ties to the lower index."""
    idx = allowed.nonzero().squeeze(1)
    assert 0 <= k <= idx.numel(), f"asked for {k} of {idx.numel()} candidates"
    order = torch.sort(score[idx], stable=True, descending=largest).indices[:k]
    return idx[order]


def split(flat_idx: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Indices into a concatenation of layers -> per-layer indices."""
    out, start = [], 0
    for n in sizes:
        chosen = flat_idx[(flat_idx >= start) & (flat_idx < start + n)]
        out.append(chosen - start)
        start += n
    return out


@dataclass
class Layer:
    name: str
    weight: torch.Tensor  # the parameter itself
    mask: torch.Tensor    # bool, same shape: True = active
    ever_active: torch.Tensor  # bool: ever active since the masks were set (ITOP)
    inactive: torch.Tensor | None = None  # ~mask, kept for the training path; None while the mask is full
    followers: list = field(default_factory=list)  # tensors zeroed with the weight (the EMA's copy)

    @property
    def numel(self) -> int:
        return self.weight.numel()

    @property
    def active(self) -> int:
        return int(self.mask.sum())


# ---- prune criteria: each returns, per layer, the flat indices to deactivate ---------------------

def prune_magnitude(layers: list[Layer], counts: list[int]) -> list[torch.Tensor]:
    """Per layer, the k active weights of smallest |w|."""
    return [top_k(l.weight.detach().abs().flatten(), l.mask.flatten(), k, largest=False)
            for l, k in zip(layers, counts)]


def prune_global_magnitude(layers: list[Layer], total: int) -> list[torch.Tensor]:
    """The `total` active weights of smallest |w| over all layers (one threshold)."""
    score = torch.cat([l.weight.detach().abs().flatten() for l in layers])
    allowed = torch.cat([l.mask.flatten() for l in layers])
    return split(top_k(score, allowed, total, largest=False), [l.numel for l in layers])


def prune_set(layers: list[Layer], counts: list[int]) -> list[torch.Tensor]:
    """SET prune, read as the SET paper (Mocanu et al. 2018) does it: per layer, half of the k from the
    negative weights closest to zero (SET's "largest negative" weights) and half from the smallest positive
    ones; zeros count as positive. It removes the weights nearest zero on each side, not the most negative
    ones (the reading agreed for this project). If one sign has too few active weights, the other sign
    makes up the difference."""
    out = []
    for l, k in zip(layers, counts):
        w, active = l.weight.detach().flatten(), l.mask.flatten()
        neg, pos = active & (w < 0), active & (w >= 0)
        n_neg, n_pos = int(neg.sum()), int(pos.sum())
        k_neg = min(k // 2, n_neg)
        k_pos = min(k - k_neg, n_pos)
        k_neg = k - k_pos  # only grows when positives ran short
        out.append(torch.cat([top_k(w, neg, k_neg, largest=True), top_k(w, pos, k_pos, largest=False)]))
    return out


# ---- growth: scores, then the best among candidates ----------------------------------------------

def gradient_scores(layers: list[Layer], grads) -> list[torch.Tensor]:
    """|dL/dw| per layer, flat (RigL). `grads()` returns {layer: dense gradient}."""
    g = grads()
    return [g[l.name].detach().abs().flatten() for l in layers]


def random_scores(layers: list[Layer], gen: torch.Generator) -> list[torch.Tensor]:
    """Uniform scores drawn from `gen` (CPU) in layer order: the top k of iid uniform scores among any
    candidate set is a uniformly random k-subset of it."""
    return [torch.rand(l.numel, generator=gen).to(l.weight.device) for l in layers]


def pick(scores, candidates, k, per_layer: bool) -> list[torch.Tensor]:
    """The k best by score among the candidates, per layer (k: one count per layer) or globally (k: one count
    over all layers at once)."""
    if per_layer:
        return [top_k(s, c, n, largest=True) for s, c, n in zip(scores, candidates, k)]
    chosen = top_k(torch.cat(scores), torch.cat(candidates), k, largest=True)
    return split(chosen, [s.numel() for s in scores])


def without(candidates: list[torch.Tensor], chosen: list[torch.Tensor]) -> list[torch.Tensor]:
    out = [c.clone() for c in candidates]
    for c, idx in zip(out, chosen):
        c[idx] = False
    return out


def grow_hybrid(grad_scores, rand_scores, candidates, k, alpha: float, per_layer: bool):
    """round(alpha * k) by gradient, then the rest uniformly at random among the candidates left
    (per layer: alpha applies to each layer's own count)."""
    by_grad = [count_for(alpha, n) for n in k] if per_layer else count_for(alpha, k)
    rest = [n - g for n, g in zip(k, by_grad)] if per_layer else k - by_grad
    a = pick(grad_scores, candidates, by_grad, per_layer)
    b = pick(rand_scores, without(candidates, a), rest, per_layer)
    return [torch.cat([x, y]) for x, y in zip(a, b)]


# The criteria's names are the protocol's (PruneCriterion, GrowthCriterion in src/vocabulary/criteria.ts);
# test_masking checks that these tables implement exactly those.
PRUNERS = {"magnitude": "per_layer", "set": "per_layer", "global_magnitude": "global"}
GROWERS = {name: name.removeprefix("global_") for name in
           ("random", "gradient", "hybrid", "global_random", "global_gradient", "global_hybrid")}


def grow(layers, criterion: str, grads, gen, candidates, k, alpha: float | None):
    """Indices to activate per layer under a growth criterion; `k` as in `pick`. Random scores are
    drawn only by random and hybrid criteria, and `grads()` is only called by gradient and hybrid ones;
    `alpha` (the share by gradient) is read by hybrid growth only."""
    if criterion not in GROWERS:
        raise ValueError(f"unknown growth criterion {criterion!r}; known: {sorted(GROWERS)}")
    per_layer = not criterion.startswith("global")
    kind = GROWERS[criterion]
    if kind == "hybrid":
        return grow_hybrid(gradient_scores(layers, grads), random_scores(layers, gen), candidates, k, alpha, per_layer)
    scores = gradient_scores(layers, grads) if kind == "gradient" else random_scores(layers, gen)
    return pick(scores, candidates, k, per_layer)


class MaskSet:
    """The masks of one network, tied to its optimizer so moments can be zeroed with the weights."""

    def __init__(self, model: nn.Module, optimizer: Adam | None = None):
        self.optimizer = optimizer
        self.layers = [Layer(name, w, torch.ones_like(w, dtype=torch.bool), torch.ones_like(w, dtype=torch.bool))
                       for name, w in maskable_layers(model)]
        self.by_name = {l.name: l for l in self.layers}
        self.sparse_layers: list[Layer] = []  # layers with at least one inactive weight: the only ones training masks
        self.version = 0  # moves at every change of what the training path reads (CUDA graphs re-capture on it)

    def follow(self, model: nn.Module) -> None:
        """Make `model`'s maskable weights (a copy of this network, e.g. the generator's EMA) follow the
        masks: at every mask change their entries outside the mask, and at arriving positions (grown weights that
        were not active before the change), become 0."""
        for l, (name, w) in zip(self.layers, maskable_layers(model), strict=True):
            assert name == l.name and w.shape == l.weight.shape, (name, l.name)
            l.followers.append(w)
        self.apply()

    # -- counts
    def active(self) -> int:
        return sum(l.active for l in self.layers)

    def total(self) -> int:
        return sum(l.numel for l in self.layers)

    def density(self) -> float:
        total = self.total()
        return self.active() / total if total else 1.0

    # -- keeping the invariants
    @torch.no_grad()
    def zero_moments(self, layer: Layer, where: torch.Tensor) -> None:
        state = self.optimizer.state.get(layer.weight, {}) if self.optimizer is not None else {}
        for key in MOMENTS:
            if key in state:
                state[key].masked_fill_(where, 0)

    @torch.no_grad()
    def apply(self) -> None:
        """After a mask change: zero weights, their moments and their followers outside the masks."""
        for l in self.layers:
            outside = ~l.mask
            l.weight.masked_fill_(outside, 0)
            self.zero_moments(l, outside)
            for f in l.followers:
                f.masked_fill_(outside, 0)
        self._refresh()

    def _refresh(self) -> None:
        """Recompute what the training path uses, once per mask change rather than once per step."""
        for l in self.layers:
            l.inactive = ~l.mask if l.active < l.numel else None
        self.sparse_layers = [l for l in self.layers if l.inactive is not None]
        self.version += 1

    @torch.no_grad()
    def mask_grads(self) -> None:
        """The whole per-step cost of masking: one in-place fill per layer that has inactive weights.
        masked_fill_ (not a multiply by a float mask) so an inf or nan gradient outside the mask still
        becomes exactly 0. Re-zeroing the weights after the optimizer step is not needed: at an inactive
        entry the gradient is 0 and Adam's moments are 0 (every mask change zeroes them), so Adam's update
        there is lr * 0 / (sqrt(0) + eps) = 0 and the weight stays exactly 0 (adam.py requires eps > 0)."""
        for l in self.sparse_layers:
            if l.weight.grad is not None:
                l.weight.grad.masked_fill_(l.inactive, 0)

    def _record_itop(self) -> None:
        for l in self.layers:
            l.ever_active |= l.mask

    # -- operations
    @torch.no_grad()
    def set_densities(self, densities: dict[str, float], gen: torch.Generator) -> None:
        """Random masks with exactly count_for(d, numel) active weights; restarts ITOP tracking.
        Layers not named keep their mask."""
        for l in self.layers:
            if l.name not in densities:
                continue
            chosen = torch.randperm(l.numel, generator=gen)[:count_for(densities[l.name], l.numel)]
            flat = torch.zeros(l.numel, dtype=torch.bool)
            flat[chosen] = True
            l.mask = flat.view(l.weight.shape).to(l.weight.device)
            l.ever_active = l.mask.clone()
        self.apply()

    def _deactivate(self, removed: list[torch.Tensor]) -> None:
        for l, idx in zip(self.layers, removed):
            l.mask.view(-1)[idx] = False
        self.apply()

    @torch.no_grad()
    def _activate(self, grown: list[torch.Tensor]) -> None:
        """Grown weights start at exactly 0 with zero Adam moments (and 0 in the followers)."""
        for l, idx in zip(self.layers, grown):
            l.mask.view(-1)[idx] = True
            l.weight.view(-1)[idx] = 0
            for f in l.followers:
                f.view(-1)[idx] = 0
            where = torch.zeros_like(l.mask)
            where.view(-1)[idx] = True
            self.zero_moments(l, where)
        self._record_itop()
        self._refresh()

    def dst_step(self, drop_rate: float, prune: str, growth: str, grads,
                 gen: torch.Generator, alpha: float) -> tuple[int, int, int]:
        """Drop round(drop_rate * active) weights (per layer, or over all layers for global_magnitude),
        then grow as many among the weights inactive after the drop, as the reference code and RigL do:
        per-layer growth refills each layer with what it lost, global growth places the total anywhere,
        hybrid growth takes round(alpha * k) of them by gradient and the rest at random. A weight dropped
        and grown again in the same step stays as it was (its value, Adam moments and EMA entry): only
        the weights that really leave are zeroed, and only those that really arrive start at 0. The
        growth gradient (`grads()`) is taken before anything changes. Returns (pruned, grown, regrown):
        the drop count, the growth count (equal), and how many grown weights were just dropped."""
        if prune not in PRUNERS:
            raise ValueError(f"unknown prune criterion {prune!r}; known: {sorted(PRUNERS)}")
        if growth not in GROWERS:  # checked before the prune changes anything
            raise ValueError(f"unknown growth criterion {growth!r}; known: {sorted(GROWERS)}")
        if PRUNERS[prune] == "global":
            removed = prune_global_magnitude(self.layers, count_for(drop_rate, self.active()))
        else:
            counts = [count_for(drop_rate, l.active) for l in self.layers]
            removed = (prune_set if prune == "set" else prune_magnitude)(self.layers, counts)
        n_removed = [int(r.numel()) for r in removed]
        inactive_after_drop = [~l.mask.flatten() for l in self.layers]
        for c, idx in zip(inactive_after_drop, removed):
            c[idx] = True
        k = sum(n_removed) if growth.startswith("global") else n_removed
        grown = grow(self.layers, growth, grads, gen, inactive_after_drop, k, alpha)

        leaving, arriving, regrown = [], [], 0
        for l, r, g in zip(self.layers, removed, grown):
            was_active = l.mask.flatten()
            arriving.append(g[~was_active[g]])
            regrown += int(was_active[g].sum())
            chosen = torch.zeros_like(was_active)
            chosen[g] = True
            leaving.append(r[~chosen[r]])
        self._deactivate(leaving)
        self._activate(arriving)
        return sum(n_removed), sum(int(g.numel()) for g in grown), regrown

    def set_density(self, target: float, growth: str, grads,
                    gen: torch.Generator) -> tuple[int, int]:
        """Move to exactly count_for(target, total) active weights: below the current count prune
        by global magnitude, above it grow by a global criterion among inactive weights."""
        want, have = count_for(target, self.total()), self.active()
        if want < have:
            self._deactivate(prune_global_magnitude(self.layers, have - want))
            return have - want, 0
        if want > have:
            inactive = [~l.mask.flatten() for l in self.layers]
            self._activate(grow(self.layers, growth, grads, gen, inactive, want - have, None))
            return 0, want - have
        return 0, 0

    def state_dict(self) -> dict:
        """The masks and the ITOP (ever-active) masks by layer name, as a checkpoint holds them."""
        return {"masks": {l.name: l.mask for l in self.layers},
                "ever": {l.name: l.ever_active for l in self.layers}}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """The masks of state_dict() back (weights, moments and followers come with their own state, already
        zero outside the masks), and the training path's caches rebuilt."""
        for l in self.layers:
            for attr, saved in (("mask", state["masks"][l.name]), ("ever_active", state["ever"][l.name])):
                if saved.shape != l.weight.shape or saved.dtype != torch.bool:
                    raise ValueError(f"{attr} of {l.name} is {saved.dtype} {list(saved.shape)}, "
                                     f"expected torch.bool {list(l.weight.shape)}")
                setattr(l, attr, saved.to(l.weight.device, copy=True))
        self._refresh()

    # -- reporting
    def stats(self) -> dict:
        total, active = self.total(), self.active()
        ever = sum(int(l.ever_active.sum()) for l in self.layers)
        return {
            "active": active,
            "total": total,
            "density": active / total if total else 1.0,
            "itop": ever / total if total else 1.0,
            "layers": [{"name": l.name, "active": l.active, "total": l.numel,
                        "density": l.active / l.numel if l.numel else 1.0} for l in self.layers],
        }
