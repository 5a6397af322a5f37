"""SNGAN residual networks of the paper (CIFAR-10 32x32 and STL-10 48x48).

`build(model_cfg, data_shape) -> (G, D, latent_dim)`, data_shape = (C, H, W).

Generator (default variant, "lottery"):
    z [N, latent] -> Linear(latent -> b*b*ch) -> view [ch, b, b], b = H // 8
    3 x UpBlock(ch -> ch):  residual  BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3
                            shortcut  nearest x2, conv1x1
    BN, ReLU, conv3x3(ch -> C), tanh                              -> [N, C, 8b, 8b]
Discriminator (default variant), every Conv/Linear under classic spectral norm (`weight_orig`):
    OptimizedBlock(C -> dch):  conv3x3, ReLU, conv3x3, avgpool2; shortcut avgpool2, conv1x1
    DisBlock(dch -> dch, down): ReLU, conv3x3, ReLU, conv3x3, avgpool2; shortcut conv1x1, avgpool2
    2 x DisBlock(dch -> dch):   ReLU, conv3x3, ReLU, conv3x3; identity shortcut (nothing changes)
    ReLU, sum over space, Linear(dch -> 1, bias=False)           -> raw logits, shape [N]
32x32 (CIFAR-10, "sngan32"): b = 4, ch = 256, dch = 128. Maskable weights: G 4,266,752, D 1,052,544.
48x48 (STL-10, "sngan48"):   b = 6, same channels. The authors' public code (YiteWang/ADAPT) has no STL-10
    script; its SNGAN ("lottery" model, hence the variant's name) has a `bottom_width` (4 by default) and a
    resolution-agnostic discriminator (sum over space), so 48x48 is the same pair with b = 6: G 4,922,112
    maskable (only the first Linear grows), D 1,052,544. The same repository also carries a different 48x48
    pair ("resnet.48", G 512->256->128->64 channels, D 64->...->1024 with four down-blocks, mean pooling,
    biased final Linear); `variant: "resnet48"` selects it (fixed channels: gChannels / dChannels refused).

model_cfg keys, exactly those of the schema's sngan branch for its variant, all given (defaults are the
experiment file's, src/vocabulary/networks.ts): variant ("lottery" | "resnet48"), latentDim, spectralNorm,
gChannels and dChannels ("lottery" only), and name (if it ends in a resolution, e.g. "sngan48", it must agree
with data_shape). Weights keep PyTorch's default init, as the reference.
Convs and the generator's Linear have biases (non-maskable), as in the reference.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from . import check_keys

KEYS = {"latentDim", "gChannels", "dChannels", "spectralNorm", "variant"}


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


class UpBlock(nn.Module):
    """Pre-activation residual up-block (BN, ReLU, x2, conv3, BN, ReLU, conv3) + (x2, conv1) shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_up(x))


class OptimizedBlock(nn.Module):
    """First D block: conv3, ReLU, conv3, avgpool; shortcut avgpool then conv1 (no leading ReLU)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _down(self.conv2(F.relu(self.conv1(x))))
        return h + self.shortcut(_down(x))


class DisBlock(nn.Module):
    """Pre-activation D block; 1x1 learnable shortcut only where channels or size change."""

    def __init__(self, cin: int, cout: int, down: bool, hidden: int | None = None):
        super().__init__()
        hidden = cin if hidden is None else hidden
        self.down = down
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if (cin != cout or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.down:
            h, s = _down(h), _down(s)
        return h + s


class Generator(nn.Module):
    def __init__(self, latent: int, bottom: int, channels: list[int], out_channels: int):
        super().__init__()
        self.latent_dim = latent
        self.bottom = bottom
        self.ch0 = channels[0]
        self.fc = nn.Linear(latent, bottom * bottom * channels[0])
        self.blocks = nn.Sequential(*[UpBlock(a, b) for a, b in zip(channels[:-1], channels[1:])])
        self.bn_out = nn.BatchNorm2d(channels[-1])
        self.conv_out = nn.Conv2d(channels[-1], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z.reshape(z.shape[0], -1)).view(z.shape[0], self.ch0, self.bottom, self.bottom)
        h = self.blocks(h)
        return torch.tanh(self.conv_out(F.relu(self.bn_out(h))))


class Discriminator(nn.Module):
    """Returns raw logits of shape [N]."""

    def __init__(self, in_channels: int, blocks: list[tuple[int, bool, int | None]], first: int, pool: str,
                 final_bias: bool):
        super().__init__()
        layers: list[nn.Module] = [OptimizedBlock(in_channels, first)]
        c = first
        for cout, down, hidden in blocks:
            layers.append(DisBlock(c, cout, down, hidden))
            c = cout
        self.blocks = nn.Sequential(*layers)
        self.pool = pool
        self.fc = nn.Linear(c, 1, bias=final_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x))
        h = h.sum(dim=(2, 3)) if self.pool == "sum" else h.mean(dim=(2, 3))
        return self.fc(h).view(-1)


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Wrap every Linear / Conv / ConvTranspose of `net` in classic spectral norm (parameter `weight_orig`)."""
    targets = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    for m in targets:
        nn.utils.spectral_norm(m)
    return net


def _check_name(model_cfg: dict, h: int) -> None:
    name = str(model_cfg.get("name", "") or "")
    m = re.search(r"(\d+)$", name)
    if m and int(m.group(1)) != h:
        raise ValueError(f"model {name!r} is for {m.group(1)}x{m.group(1)} images but the data is {h}x{h}")


def build(model_cfg: dict | None, data_shape: tuple) -> tuple[nn.Module, nn.Module, int]:
    """Build (G, D, latent_dim) for images of shape data_shape = (C, H, W); see the module docstring."""
    cfg = dict(model_cfg or {})
    check_keys(cfg, KEYS, "sngan")
    if len(data_shape) != 3:
        raise ValueError(f"SNGAN needs image data (C, H, W), got shape {tuple(data_shape)}")
    c, h, w = (int(v) for v in data_shape)
    if h != w:
        raise ValueError(f"SNGAN needs square images, got {h}x{w}")
    _check_name(cfg, h)
    latent = int(cfg["latentDim"])
    variant = cfg["variant"]

    if variant == "lottery":
        bottom = h // 8
        if bottom * 8 != h:
            raise ValueError(f"SNGAN upsamples 8x from the bottom width: {h} is not a multiple of 8")
        gch = int(cfg["gChannels"])
        dch = int(cfg["dChannels"])
        G = Generator(latent, bottom, [gch] * 4, c)
        D = Discriminator(c, [(dch, True, None), (dch, False, None), (dch, False, None)], dch, "sum", False)
    elif variant == "resnet48":
        if h != 48:
            raise ValueError(f"variant resnet48 is for 48x48 images, got {h}x{h}")
        if "gChannels" in cfg or "dChannels" in cfg:
            raise ValueError("variant resnet48 has fixed channel widths; gChannels / dChannels apply to 'lottery'")
        G = Generator(latent, 6, [512, 256, 128, 64], c)
        D = Discriminator(c, [(128, True, 128), (256, True, 256), (512, True, 512), (1024, True, 1024)], 64,
                          "mean", True)
    else:
        raise ValueError(f"unknown SNGAN variant {variant!r} (lottery | resnet48)")

    if cfg["spectralNorm"]:
        add_spectral_norm(D)
    return G, D, latent
