"""synthetic: random images of a given shape [C, H, W], uniform in [-1, 1) (the range of G's tanh).

For benchmarks and tests only: there is nothing to learn from it, so no result should rest on it.
The images are drawn from the data generator (seeded from the build seed), on the device itself, so a
CUDA benchmark measures no host-to-device copy and no synchronization per batch.
"""

import torch


class Synthetic:
    def __init__(self, shape: tuple, seed: int, device: str):
        self.shape = tuple(int(d) for d in shape)
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def sample(self, n: int) -> torch.Tensor:
        return torch.rand((n, *self.shape), generator=self.gen, device=self.device) * 2 - 1


def build(cfg: dict, seed: int, device: str) -> Synthetic:
    return Synthetic(cfg["shape"], seed, device)
