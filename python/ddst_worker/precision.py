"""Numerics settings of a build: `train.precision` and `train.tf32`.

bf16 (opt-in, never the default): the forward passes of the training steps, the probe and the growth
gradient run under torch.autocast(bfloat16) (Gan.autocast in train.py); the losses are taken in fp32, the
weights, gradients, Adam's moments and the EMA stay fp32. Spectral norm's power iteration is kept in fp32
(autocast would run its matrix-vector products in bf16 on CUDA), so sigma is estimated as in fp32 training
and only the normalized weight enters its layer in bf16.

TF32 (CUDA only; on by default): tensor-core matmuls and convolutions with a 10-bit mantissa. The reference
code ran on torch 1.10, where both were on by default, so this is the reference's own numerics. The switch
is process-wide in torch; a worker runs one build at a time, and every build sets it.
"""

import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from .models import spectral_norm_hooks

PRECISIONS = ("fp32", "bf16")


class Fp32SpectralNorm(SpectralNorm):
    """Classic spectral norm whose weight (power iteration and division by sigma) is computed outside
    autocast."""

    def compute_weight(self, module: nn.Module, do_power_iteration: bool) -> torch.Tensor:
        device = getattr(module, self.name + "_orig").device.type
        with torch.autocast(device, enabled=False):
            return super().compute_weight(module, do_power_iteration)


def fp32_spectral_norm(*models: nn.Module) -> None:
    """Make every classic spectral-norm hook of `models` compute in fp32 under autocast. The class swap keeps
    the hook's state and survives deepcopy (the EMA's copy) and state_dict."""
    for _, hook in spectral_norm_hooks(*models):
        if type(hook) is SpectralNorm:
            hook.__class__ = Fp32SpectralNorm


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
