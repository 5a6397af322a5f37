"""mlp2d: small MLPs for 2-D toy mixtures. D returns raw logits (no sigmoid).

model_cfg keys, exactly those of the schema's mlp2d branch, all given: hidden, depth, latentDim, name.
"""

import math

from torch import nn

from . import check_keys

KEYS = {"hidden", "depth", "latentDim"}


def mlp(sizes: list[int], act) -> nn.Sequential:
    """Linear layers between consecutive sizes, `act` after every one but the last."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int, depth: int, data_shape: tuple):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.net = mlp([latent_dim] + [hidden] * depth + [math.prod(data_shape)], nn.ReLU)

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.data_shape)


class Discriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: int, depth: int):
        super().__init__()
        self.net = mlp([in_dim] + [hidden] * depth + [1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.net(x.flatten(1)).squeeze(1)


def build(cfg: dict, data_shape: tuple):
    check_keys(cfg, KEYS, "mlp2d")
    hidden, depth, latent = cfg["hidden"], cfg["depth"], cfg["latentDim"]
    if min(hidden, depth, latent) < 1:
        raise ValueError("mlp2d needs hidden, depth and latentDim >= 1")
    out_dim = math.prod(data_shape)
    return Generator(latent, hidden, depth, data_shape), Discriminator(out_dim, hidden, depth), latent
