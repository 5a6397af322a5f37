"""Fréchet distance between two Gaussians fitted to feature sets (FID when the features are
Inception pool3, classifier-FID when they come from the domain classifier).

    d² = ||mu1 - mu2||² + tr(s1) + tr(s2) - 2 tr( (s1^½ s2 s1^½)^½ )

The usual implementation takes sqrtm(s1 @ s2) of a non-symmetric product, which can come back complex
or inaccurate when a covariance is singular (fewer samples than dimensions). s1^½ s2 s1^½ has the same
eigenvalues as s1 s2 but is symmetric PSD, so two `eigh` calls in float64 give the trace exactly.
Rounding leaves the zero eigenvalues of singular covariances at about ±eps·λmax; they are set to 0
(negative ones always, positive ones below D·eps·λmax, the usual rank tolerance), since taking their
square root would turn 1e-16 noise into a 1e-8 error.
"""

import numpy as np


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (N-1 denominator, as pytorch-fid and the TF code) of
    features [N, D], in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be [N, D] with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _symmetric(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2  # removes rounding asymmetry so eigh sees the matrix we mean


def _psd_eigenvalues(w: np.ndarray) -> np.ndarray:
    tol = len(w) * np.finfo(np.float64).eps * max(w.max(initial=0.0), 0.0)
    return np.where(w > tol, w, 0.0)


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix."""
    w, v = np.linalg.eigh(_symmetric(m))
    return (v * np.sqrt(_psd_eigenvalues(w))) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, s1 {s1.shape}, mu2 {mu2.shape}, s2 {s2.shape}")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise ValueError("statistics contain NaN or inf")
    r1 = psd_sqrt(s1)
    cross = np.sqrt(_psd_eigenvalues(np.linalg.eigvalsh(_symmetric(r1 @ s2 @ r1)))).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * cross
    return float(max(value, 0.0))  # a distance: only rounding can take it below 0
