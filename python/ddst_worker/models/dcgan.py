"""Small DCGAN pair for 28x28 (dcgan28, MNIST) and 32x32 (dcgan32, 1 or 3 channels) images.

`build(model_cfg, data_shape) -> (G, D, latent_dim)`, data_shape = (C, H, W) with H = W divisible by 4.

Generator: z [N, latent] -> Linear(latent -> 2w*s*s), s = H // 4 (7 for 28, 8 for 32) -> view [2w, s, s]
    -> BN, ReLU -> ConvT(2w -> w, 4, stride 2, pad 1) [2s] -> BN, ReLU -> ConvT(w -> C, 4, 2, 1) [4s = H] -> tanh
Discriminator: Conv(C -> w, 4, 2, 1) [H/2] -> LeakyReLU 0.2 -> Conv(w -> 2w, 4, 2, 1) [H/4] -> LeakyReLU 0.2
    -> flatten -> Linear(2w*s*s -> 1) -> raw logits, shape [N]
w = `width` (the experiment file's default 32: 32/64 channels, half the classic DCGAN's, small enough for CPU
runs). `spectralNorm` wraps every D layer in classic spectral norm (`weight_orig`).

model_cfg keys, exactly those of the schema's dcgan branch, all given (defaults are the experiment file's,
src/vocabulary/networks.ts): latentDim, width, spectralNorm, and name (if it ends in a resolution, e.g.
"dcgan28", it must agree with data_shape).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from . import check_keys

KEYS = {"latentDim", "width", "spectralNorm"}


class Generator(nn.Module):
    def __init__(self, latent: int, side: int, width: int, out_channels: int):
        super().__init__()
        self.latent_dim = latent
        self.side = side
        self.ch0 = 2 * width
        self.fc = nn.Linear(latent, self.ch0 * side * side)
        self.bn0 = nn.BatchNorm2d(self.ch0)
        self.up1 = nn.ConvTranspose2d(self.ch0, width, 4, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.up2 = nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z.reshape(z.shape[0], -1)).view(z.shape[0], self.ch0, self.side, self.side)
        h = self.up1(F.relu(self.bn0(h)))
        h = self.up2(F.relu(self.bn1(h)))
        return torch.tanh(h)


class Discriminator(nn.Module):
    """Returns raw logits of shape [N]."""

    def __init__(self, in_channels: int, side: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)
        self.fc = nn.Linear(2 * width * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.fc(h.flatten(1)).view(-1)


def build(model_cfg: dict | None, data_shape: tuple) -> tuple[nn.Module, nn.Module, int]:
    """Build (G, D, latent_dim) for images of shape data_shape = (C, H, W); see the module docstring."""
    cfg = dict(model_cfg or {})
    check_keys(cfg, KEYS, "dcgan")
    if len(data_shape) != 3:
        raise ValueError(f"DCGAN needs image data (C, H, W), got shape {tuple(data_shape)}")
    c, h, w = (int(v) for v in data_shape)
    if h != w or h % 4 != 0:
        raise ValueError(f"DCGAN needs square images with a side divisible by 4, got {h}x{w}")
    name = str(cfg.get("name", "") or "")
    m = re.search(r"(\d+)$", name)
    if m and int(m.group(1)) != h:
        raise ValueError(f"model {name!r} is for {m.group(1)}x{m.group(1)} images but the data is {h}x{h}")
    latent = int(cfg["latentDim"])
    width = int(cfg["width"])
    side = h // 4
    G = Generator(latent, side, width, c)
    D = Discriminator(c, side, width)
    if cfg["spectralNorm"]:
        for mod in (D.conv1, D.conv2, D.fc):
            nn.utils.spectral_norm(mod)
    return G, D, latent
