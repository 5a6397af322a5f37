"""`train.channelsLast`: convolutions on channels-last (NHWC) activations on CUDA.

cuDNN's tensor-core convolutions work in NHWC. Fed NCHW activations, each convolution converts its input to
NHWC and its output back (and the backward does the same), a pair of extra kernels per convolution that cost
about a seventh of a paper-setting iteration's GPU time on an H100. A hook in front of every 2-d convolution
hands it its input in channels-last layout; the convolution's output keeps that layout, and so do the ReLUs,
pools, upsamplings, batch norms and residual sums after it, so only a network's first convolution converts.
The weights keep their layout (cuDNN converts those, small, itself; masks, spectral norm and checkpoints see
the tensors they always saw), and a tensor's layout never changes its values: the same algorithm, only the
summation order inside cuDNN's kernels differs, as between two GPUs. CPU runs ignore the setting.
"""

import torch
from torch import nn


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    x = args[0]
    if x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last):
        return args
    return (x.contiguous(memory_format=torch.channels_last), *args[1:])


def use_channels_last(*models: nn.Module) -> None:
    """Hand every 2-d (transposed) convolution of `models` channels-last inputs from now on (copies made
    later, the EMA's, keep the hooks)."""
    for model in models:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.register_forward_pre_hook(_channels_last_input)
