"""2-D Gaussian mixtures, generated on the fly (nothing to download).

ring8: 8 modes evenly spaced on a circle of radius `radius`, each of std `std`.
grid25: 25 modes on the 5x5 grid {-4,-2,0,2,4}^2, each of std `std`.
Both fields always arrive: their defaults are the experiment file's (src/vocabulary/networks.ts).
`centers` and `std` stay exposed so mode-coverage metrics can use them.
"""

import math

import torch

from ..errors import WorkerError
from .images import to_device


class Mixture:
    def __init__(self, centers: torch.Tensor, std: float, seed: int, device: str):
        self.centers = centers  # [modes, 2], float32, CPU
        self.std = std
        self.shape = (2,)
        self.device = device
        self.gen = torch.Generator().manual_seed(seed)  # CPU: the stream is the same on every device

    def sample(self, n: int) -> torch.Tensor:
        mode = torch.randint(len(self.centers), (n,), generator=self.gen)
        noise = torch.randn(n, 2, generator=self.gen)
        return to_device(self.centers[mode] + self.std * noise, self.device)


def ring_centers(modes: int, radius: float) -> torch.Tensor:
    angle = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angle.cos(), angle.sin()], 1)).float()


def grid_centers(side: int, step: float) -> torch.Tensor:
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * step
    return torch.cartesian_prod(ticks, ticks).float()


def build(cfg: dict, seed: int, device: str) -> Mixture:
    name = cfg["name"]
    std = cfg["std"]
    centers = ring_centers(8, cfg["radius"]) if name == "ring8" else grid_centers(5, 2.0)
    if not std > 0:
        raise WorkerError("bad_value", f"{name}: std must be > 0", {"std": std})
    return Mixture(centers, std, seed, device)
