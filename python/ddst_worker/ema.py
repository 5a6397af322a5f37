"""Generator EMA: an exponential moving average of G's weights, the network `sample` draws from.

After every G step: ema = decay * ema + (1 - decay) * w for every parameter, and every buffer (BatchNorm
running statistics) is copied, so the average net normalizes like the current one where it samples by the
running averages (sampling.py; by default it normalizes by each batch of samples instead).
Sparse EMA (docs/method.md, "Terms"): the EMA's maskable weights follow G's masks (MaskSet.follow), so at every mask
change its entries outside G's new mask, and at positions where weights arrive (grown, not active before), are
set to 0. Between mask changes they stay 0 by the update itself: an inactive weight is 0 in G and 0 in the EMA,
and decay * 0 + (1 - decay) * 0 is exactly 0.
"""

import copy

import torch
from torch import nn


class Ema:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()  # only ever sampled from (sampling.py sets its BatchNorm layers)
        self.model.requires_grad_(False)
        # Parameter and buffer lists pair up by position: the copy has the same structure.
        self.params, self.sources = list(self.model.parameters()), list(model.parameters())
        self.buffers, self.source_buffers = list(self.model.buffers()), list(model.buffers())

    @torch.no_grad()
    def update(self) -> None:
        """One multi-tensor multiply and one multiply-add over all parameters: no per-step allocation
        and no host sync, so the update stays cheap next to the G step it follows."""
        torch._foreach_mul_(self.params, self.decay)
        torch._foreach_add_(self.params, self.sources, alpha=1.0 - self.decay)
        for b, s in zip(self.buffers, self.source_buffers):
            b.copy_(s)
