"""Mode metrics for the 2-D Gaussian mixtures (ring8, grid25), with the definitions of VEEGAN
(Srivastava et al. 2017), which follows the unrolled-GAN experiments (Metz et al. 2017) and which
PacGAN reuses:

- a sample is high quality if it lies within 3 standard deviations of its nearest mode center;
- a mode is covered when it is the nearest center of at least one high-quality sample
  (`min_count` raises that threshold; VEEGAN uses 1, on 2,500 samples);
- kl: KL(h || uniform) in nats, h the histogram of high-quality samples over their nearest modes;
  0 for perfect balance, log(M) when one mode takes everything. None when no sample is high quality.
"""

import numpy as np


def _numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensors, on any device
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def toy_metrics(samples, centers, std: float, min_count: int = 1) -> dict:
    x, c = _numpy(samples), _numpy(centers)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0:
        raise ValueError(f"need samples [N, d] (N >= 1) and centers [M, d], got {x.shape} and {c.shape}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    dist = np.linalg.norm(x[:, None, :] - c[None, :, :], axis=2)  # [N, M]
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(x)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(c))
    kl = None
    if good.any():
        h = counts[counts > 0] / counts.sum()
        kl = float((h * np.log(h * len(c))).sum())
    return {"modes": int((counts >= min_count).sum()), "highQuality": float(good.mean()), "kl": kl}
