"""Masks over a model's maskable weights and the prune / grow kernels of dynamic sparse training.

Maskable weights are the weights of Linear / Conv / ConvTranspose layers (under spectral norm, the
tensor the optimizer actually updates: `weight_orig` or `parametrizations.weight.original`).
Biases and normalization parameters stay dense. A layer is named by its module's qualified name.

Invariants after every operation:
  - weights outside the mask are exactly 0, and so are their Adam moments (so a masked gradient
    keeps them at 0 and the optimizer step leaves them at 0);
  - the active count is exactly what was asked: counts are round-half-up(d * n), like JS Math.round.
Ties: every selection is an exact top-k by a *stable* sort of the score, so equal scores go to the
lower flat index first (layers in model order, each flattened row-major). No noise is added.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

MASKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
            nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # Adam (and AMSGrad) per-weight state
PRUNE_CRITERIA = ("magnitude", "global_magnitude", "set")
GROWTH_CRITERIA = ("random", "gradient", "global_random", "global_gradient")


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
    ever: torch.Tensor    # bool: ever active since the masks were set (ITOP)

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
    """SET (Mocanu et al. 2018): per layer, half of the k from the negative weights closest to zero
    (SET's "largest negative") and half from the smallest positive ones; zeros count as positive.
    If one sign has too few active weights, the other sign makes up the difference."""
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

def growth_scores(layers: list[Layer], criterion: str, grads, gen: torch.Generator):
    """Flat per-layer scores, higher = grow first. `grads()` returns {layer: dense gradient} and is
    only called for gradient criteria. Random draws come from `gen` (CPU), in layer order."""
    if criterion.endswith("gradient"):
        g = grads()
        return [g[l.name].detach().abs().flatten() for l in layers]
    return [torch.rand(l.numel, generator=gen).to(l.weight.device) for l in layers]


def pick_with_fallback(score, first, second, k) -> torch.Tensor:
    """k best by score from `first`; if `first` is short, the rest from `second` (same score)."""
    n_first = int(first.sum())
    chosen = top_k(score, first, min(k, n_first), largest=True)
    if k > n_first:
        chosen = torch.cat([chosen, top_k(score, second, k - n_first, largest=True)])
    return chosen


def grow_per_layer(scores, first, second, counts) -> list[torch.Tensor]:
    return [pick_with_fallback(s, f, b, k) for s, f, b, k in zip(scores, first, second, counts)]


def grow_global(scores, first, second, total) -> list[torch.Tensor]:
    chosen = pick_with_fallback(torch.cat(scores), torch.cat(first), torch.cat(second), total)
    return split(chosen, [s.numel() for s in scores])


class MaskSet:
    """The masks of one network, tied to its optimizer so moments can be zeroed with the weights."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None):
        self.optimizer = optimizer
        self.layers = [Layer(name, w, torch.ones_like(w, dtype=torch.bool), torch.ones_like(w, dtype=torch.bool))
                       for name, w in maskable_layers(model)]
        self.by_name = {l.name: l for l in self.layers}

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
    def apply(self, moments: bool = True) -> None:
        """Zero weights (and their moments) outside the masks. After an optimizer step on masked
        gradients the moments outside the mask are still 0, so train steps skip them."""
        for l in self.layers:
            l.weight.masked_fill_(~l.mask, 0)
            if moments:
                self.zero_moments(l, ~l.mask)

    @torch.no_grad()
    def mask_grads(self) -> None:
        for l in self.layers:
            if l.weight.grad is not None:
                l.weight.grad.masked_fill_(~l.mask, 0)

    def _record_itop(self) -> None:
        for l in self.layers:
            l.ever |= l.mask

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
            l.ever = l.mask.clone()
        self.apply()

    def _deactivate(self, removed: list[torch.Tensor]) -> None:
        for l, idx in zip(self.layers, removed):
            l.mask.view(-1)[idx] = False
        self.apply()

    @torch.no_grad()
    def _activate(self, grown: list[torch.Tensor]) -> None:
        """Grown weights start at exactly 0 with zero Adam moments."""
        for l, idx in zip(self.layers, grown):
            l.mask.view(-1)[idx] = True
            l.weight.view(-1)[idx] = 0
            where = torch.zeros_like(l.mask)
            where.view(-1)[idx] = True
            self.zero_moments(l, where)
        self._record_itop()

    def dst_step(self, drop_rate: float, prune: str, growth: str, grads,
                 gen: torch.Generator) -> tuple[int, int]:
        """Drop round(drop_rate * active) weights (per layer, or over all layers for
        global_magnitude), then regrow exactly as many among the weights that were inactive
        before the prune (RigL). Per-layer growth refills each layer with what it lost; global
        growth places the total anywhere. Only if too few were inactive do just-pruned weights
        become candidates too (they restart at 0), so the count stays exact."""
        before = [l.mask.flatten().clone() for l in self.layers]
        if prune == "global_magnitude":
            removed = prune_global_magnitude(self.layers, count_for(drop_rate, self.active()))
        else:
            counts = [count_for(drop_rate, l.active) for l in self.layers]
            removed = (prune_set if prune == "set" else prune_magnitude)(self.layers, counts)
        self._deactivate(removed)

        scores = growth_scores(self.layers, growth, grads, gen)
        first = [~b for b in before]
        second = [b & ~l.mask.flatten() for b, l in zip(before, self.layers)]  # just pruned
        n_removed = [int(r.numel()) for r in removed]
        if growth.startswith("global"):
            grown = grow_global(scores, first, second, sum(n_removed))
        else:
            grown = grow_per_layer(scores, first, second, n_removed)
        self._activate(grown)
        return sum(n_removed), sum(int(g.numel()) for g in grown)

    def set_density(self, target: float, growth: str, grads,
                    gen: torch.Generator) -> tuple[int, int]:
        """Move to exactly count_for(target, total) active weights: below the current count prune
        by global magnitude, above it grow by a global criterion among inactive weights."""
        want, have = count_for(target, self.total()), self.active()
        if want < have:
            self._deactivate(prune_global_magnitude(self.layers, have - want))
            return have - want, 0
        if want > have:
            scores = growth_scores(self.layers, growth, grads, gen)
            inactive = [~l.mask.flatten() for l in self.layers]
            nothing = [torch.zeros_like(m) for m in inactive]
            self._activate(grow_global(scores, inactive, nothing, want - have))
            return 0, want - have
        return 0, 0

    # -- reporting
    def stats(self) -> dict:
        total, active = self.total(), self.active()
        ever = sum(int(l.ever.sum()) for l in self.layers)
        return {
            "active": active,
            "total": total,
            "density": active / total if total else 1.0,
            "itop": ever / total if total else 1.0,
            "layers": [{"name": l.name, "active": l.active, "total": l.numel,
                        "density": l.active / l.numel if l.numel else 1.0} for l in self.layers],
        }
